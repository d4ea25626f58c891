// Draws every <canvas data-chart="{...}"> with Chart.js. The server writes the chart as JSON (type, labels,
// datasets, optional y-axis bounds), so pages carry no script of their own and the CSP needs no 'unsafe-inline'.
(function () {
  function draw(root) {
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.feedloopChart) return;
      var spec = JSON.parse(canvas.dataset.chart);
      canvas.feedloopChart = new Chart(canvas, {
        type: spec.type || "line",
        data: { labels: spec.labels, datasets: spec.datasets },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          plugins: { legend: { display: spec.datasets.length > 1 } },
          scales: spec.type === "doughnut" ? {} : { y: Object.assign({ beginAtZero: true }, spec.y || {}) },
        },
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:load", function (event) { draw(event.detail.elt); });
})();
