// Web console behaviour, loaded as a file (the CSP allows no inline script).
// Charts: every element with data-chart='{"kind": "bar", "x": [...], "series": {"name": [...]}}' becomes an
// ECharts chart (vendored bundle). Upload: drag-and-drop onto .drop fills its file input.
(function () {
  "use strict";
  function chart(el) {
    if (typeof echarts === "undefined") { return; }
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var names = Object.keys(spec.series);
    var option = {
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { data: names, type: "scroll", top: 0 },
      grid: { left: 90, right: 20, top: 40, bottom: 30 },
      xAxis: { type: "category", data: spec.x },
      yAxis: { type: "value", axisLabel: { formatter: function (v) { return "¥" + v.toLocaleString("en-US"); } } },
      series: names.map(function (n) {
        return { name: n, type: spec.kind || "bar", stack: spec.stack ? "total" : undefined,
                 data: spec.series[n].map(Number) };
      })
    };
    var c = echarts.init(el, null, { renderer: "canvas" });
    c.setOption(option);
    window.addEventListener("resize", function () { c.resize(); });
  }
  function dropzone(zone) {
    var input = zone.querySelector("input[type=file]");
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; }
    });
  }
  document.querySelectorAll("[data-chart]").forEach(chart);
  document.querySelectorAll(".drop").forEach(dropzone);
})();
