/* Draws every chart of a page. The server renders each figure as JSON with Django's json_script
   (CSP forbids inline scripts) next to an element <div data-chart="ID">; this file only reads
   that JSON and calls Plotly, so every number shown comes from the server. */
(function () {
  "use strict";

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || typeof Plotly === "undefined") {
      return;
    }
    var figure = JSON.parse(source.textContent);
    var config = {
      responsive: true,
      displaylogo: false,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "toggleSpikelines"],
    };
    Plotly.newPlot(el, figure.data, figure.layout, config);
  }

  function confirmForms() {
    // Destructive forms ask first: <form data-confirm="Roll back release 12?">
    var forms = document.querySelectorAll("form[data-confirm]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  }

  // live.js redraws the charts of a region it refreshed
  window.dashboardCharts = { draw: draw };

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw);
    confirmForms();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
