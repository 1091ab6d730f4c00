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

  if (data.stageMonths) {
    draw("chart-stage-months", {
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null || v === undefined ? "—" : v + "%"; } },
      legend: { type: "scroll", top: 0 },
      grid: grid,
      xAxis: { type: "category", data: data.stageMonths.labels, axisLabel: { rotate: narrow ? 45 : 0 } },
      yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
      series: data.stageMonths.series.map(function (s) {
        return { name: s.name, type: "line", data: s.data, connectNulls: false };
      })
    });
  }

  if (data.pool) {
    draw("chart-pool", {
      tooltip: { trigger: "axis" },
      legend: { data: ["发出邀请", "接受", "婉拒或超时", "帮助完成"], top: 0 },
      grid: grid,
      xAxis: { type: "category", data: data.pool.labels, axisLabel: { rotate: narrow ? 45 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: "发出邀请", type: "bar", data: data.pool.sent },
        { name: "接受", type: "bar", data: data.pool.accepted },
        { name: "婉拒或超时", type: "bar", data: data.pool.refused },
        { name: "帮助完成", type: "line", data: data.pool.done }
      ]
    });
  }

  if (data.league && data.league.labels.length) {
    draw("chart-league", {
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null || v === undefined ? "—" : v + "%"; } },
      grid: grid,
      xAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
      yAxis: { type: "category", data: data.league.labels.slice().reverse(), axisLabel: { fontSize: narrow ? 10 : 12 } },
      series: [{ name: "圆梦率", type: "bar", data: data.league.rates.slice().reverse() }]
    });
  }

  if (data.map) {
    var most = Math.max.apply(null, data.map.map(function (p) { return p.value[2]; }).concat([1]));
    draw("chart-map", {
      tooltip: { formatter: function (p) { return p.name + "：在办 " + p.value[2] + " 件"; } },
      grid: { left: 8, right: 8, top: 12, bottom: 8, containLabel: true },
      xAxis: { type: "value", scale: true, name: "经度", axisLabel: { show: !narrow } },
      yAxis: { type: "value", scale: true, name: "纬度", axisLabel: { show: !narrow } },
      series: [{
        name: "在办诉求",
        type: "scatter",
        data: data.map,
        symbolSize: function (v) { return 6 + 34 * Math.sqrt(v[2] / most); },
        label: { show: true, formatter: "{b}", position: "right", fontSize: narrow ? 9 : 11 }
      }]
    });
  }

  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
}());
