/* Live pages: polls the page's JSON twin (the element with data-live-src) every 15 s while the tab
   is visible and replaces the inner HTML of each node marked data-live="NAME" with the server's
   rendering of the same node. No reload; only the marked nodes change. A node holding the keyboard
   focus is left alone until the next poll. Countdowns (<time data-countdown-until="ISO">) tick
   every second between polls. */
(function () {
  "use strict";

  var source = null;
  var timer = null;
  var busy = false;
  var ticking = null;
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function setState(text) {
    var el = document.querySelector("[data-live-state]");
    if (el) {
      el.textContent = text;
    }
  }

  function apply(regions) {
    Object.keys(regions).forEach(function (name) {
      var nodes = document.querySelectorAll('[data-live="' + name.replace(/["\\]/g, "") + '"]');
      Array.prototype.forEach.call(nodes, function (node) {
        if (node.liveHtml === regions[name]) {
          return; // compared with the server's last HTML: a drawn chart changes the DOM, not the data
        }
        if (document.activeElement && node !== document.body && node.contains(document.activeElement)) {
          return; // do not pull the focus from under the keyboard
        }
        var seen = node.liveSeen;
        node.innerHTML = regions[name];
        node.liveHtml = regions[name];
        node.liveSeen = true;
        if (window.dashboardCharts) {
          Array.prototype.forEach.call(node.querySelectorAll("[data-chart]"), window.dashboardCharts.draw);
        }
        startTicking(); // a countdown may have arrived with it
        if (seen && !reduceMotion && name !== "as-of") {
          node.classList.remove("live-changed");
          void node.offsetWidth; // restart the highlight
          node.classList.add("live-changed");
        }
      });
    });
  }

  function refresh() {
    if (!source || busy || document.hidden) {
      return Promise.resolve();
    }
    busy = true;
    return fetch(source.getAttribute("data-live-src"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      redirect: "manual",
      cache: "no-store",
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (!response.ok || type.indexOf("application/json") !== 0) {
        setState(response.status === 403 ? "(updates stopped: no access)" : "(updates paused: reload to sign in)");
        return null;
      }
      return response.json();
    }).then(function (data) {
      if (data) {
        apply(data.regions || {});
        setState("");
        window.dashboardLive.updates += 1;
      }
    }).catch(function () {
      setState("(updates paused: server not reachable)");
    }).then(function () {
      busy = false;
    });
  }

  function schedule() {
    if (timer !== null) {
      window.clearInterval(timer);
    }
    var every = parseInt(source.getAttribute("data-live-interval"), 10) || 15000;
    timer = window.setInterval(refresh, every);
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function tick() {
    var nodes = document.querySelectorAll("[data-countdown-until]");
    Array.prototype.forEach.call(nodes, function (node) {
      var left = Math.max(0, Math.round((Date.parse(node.getAttribute("data-countdown-until")) - Date.now()) / 1000));
      var hours = Math.floor(left / 3600);
      var text = (hours ? hours + "h " : "") + pad(Math.floor((left % 3600) / 60)) + "m " + pad(left % 60) + "s";
      if (node.textContent !== text) {
        node.textContent = text;
      }
    });
  }

  function startTicking() {
    tick();
    if (ticking === null && document.querySelector("[data-countdown-until]")) {
      ticking = window.setInterval(tick, 1000);
    }
  }

  function init() {
    window.dashboardLive = { refresh: refresh, updates: 0 };
    // the server's HTML of each region, taken before charts.js draws into it (live.js loads first)
    Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), function (node) {
      node.liveHtml = node.innerHTML;
      node.liveSeen = false; // the browser's serialisation may differ: the first swap is silent
    });
    startTicking();
    source = document.querySelector("[data-live-src]");
    if (!source || typeof window.fetch !== "function") {
      return;
    }
    schedule();
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        refresh(); // catch up at once when the tab comes back
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
