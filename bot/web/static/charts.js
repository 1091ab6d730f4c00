/* 数据图表: draws the charts of /staff/stats/charts with Apache ECharts (served by the app from its npm package).
   The numbers come from the page's JSON block; every chart has the same numbers in a table below it, so the page
   is complete without this script. */
(function () {
  "use strict";
  var block = document.getElementById("chart-data");
  if (!block || typeof window.echarts === "undefined") { return; }
  var data = JSON.parse(block.textContent);
  var narrow = window.matchMedia("(max-width: 480px)").matches;
  var grid = { left: narrow ? 36 : 48, right: 12, top: 36, bottom: narrow ? 56 : 40, containLabel: true };
  var charts = [];

  function draw(id, option) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    option.aria = { enabled: true };
    option.animation = false;
    chart.setOption(option);
    charts.push(chart);
  }

  draw("chart-weekly", {
    tooltip: { trigger: "axis" },
    legend: { data: ["受理", "办结"], top: 0 },
    grid: grid,
    xAxis: { type: "category", data: data.weeks.labels, axisLabel: { rotate: narrow ? 45 : 0 } },
    yAxis: { type: "value", minInterval: 1 },
    dataZoom: narrow ? [{ type: "inside", start: 75, end: 100 }] : [],
    series: [
      { name: "受理", type: "line", data: data.weeks.received, showSymbol: false },
      { name: "办结", type: "line", data: data.weeks.completed, showSymbol: false }
    ]
  });

  draw("chart-stages", {
    tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "—" : v + "%"; } },
    grid: grid,
    xAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
    yAxis: { type: "category", data: data.stages.labels },
    series: [{ name: "按时率", type: "bar", data: data.stages.rates, label: { show: true, formatter: "{c}%" } }]
  });

  draw("chart-towns", {
    tooltip: { trigger: "axis" },
    legend: { type: "scroll", top: 0 },
    grid: grid,
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", data: data.towns.labels },
    series: data.towns.series.map(function (s) {
      return { name: s.name, type: "bar", stack: "all", data: s.data };
    })
  });

  draw("chart-scores", {
    tooltip: { trigger: "axis" },
    grid: grid,
    xAxis: { type: "category", data: data.scores.labels },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: "份数", type: "bar", data: data.scores.counts, label: { show: true, position: "top" } }]
  });

  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
}());
