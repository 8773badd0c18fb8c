// Tells the server the browser's time zone (used only when the profile says "browser's zone").
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("browser_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "browser_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) { /* no Intl: pages stay in the stored zone */ }
})();
