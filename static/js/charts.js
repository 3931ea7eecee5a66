// Figures drawn from the API's JSON. Nothing here computes a figure about a net: every number
// plotted is a field of the table, timeline or comparison JSON; the code only lays it out.

import { CHART, COLORS, FONT, PLOTLY_CONFIG, PREDICT } from './config.js';

// The Plotly instance that drew each element (the 3D view uses the lazily loaded gl3d one).
const drawnWith = new WeakMap();

export function plotly() {
  return window.Plotly;
}

function baseLayout(height) {
  return {
    height,
    margin: { ...CHART.margin },
    font: { ...FONT },
    paper_bgcolor: COLORS.paper,
    plot_bgcolor: COLORS.paper,
    hoverlabel: { font: { family: FONT.family, size: 13 } },
    legend: { orientation: 'h', x: 0, y: 1.12, font: { size: 13 } },
  };
}

function categoryAxis(extra = {}) {
  return {
    type: 'category',
    tickangle: CHART.tickAngle,
    tickfont: { size: CHART.tickFont },
    automargin: true,
    linecolor: COLORS.axis,
    ...extra,
  };
}

// Log axes label only the decades (1, 10, 100, 1k...): the minor 2s and 5s crowd a projector.
const LOG = { type: 'log', dtick: 1, exponentformat: 'SI' };

function valueAxis(title, extra = {}) {
  return {
    title: { text: title, font: { size: 13 } },
    gridcolor: COLORS.grid,
    zerolinecolor: COLORS.grid,
    linecolor: COLORS.axis,
    automargin: true,
    ...extra,
  };
}

// The element is as tall as its figure. Plotly's responsive resize (a window resized, a page
// printed or captured whole) autosizes both sides from the element: the width follows the
// page, and the height stays the figure's instead of collapsing to the element's border.
function fitHeight(el, height) {
  if (height) el.style.height = `${height}px`;
}

export function draw(el, figure, instance = plotly()) {
  drawnWith.set(el, instance);
  fitHeight(el, figure.layout.height);
  const config = {
    ...PLOTLY_CONFIG,
    toImageButtonOptions: { ...PLOTLY_CONFIG.toImageButtonOptions, filename: el.id },
  };
  return instance.react(el, figure.data, figure.layout, config);
}

export function purge(el) {
  const instance = drawnWith.get(el);
  if (instance) instance.purge(el);
  drawnWith.delete(el);
}

export function downloadPng(el) {
  const instance = drawnWith.get(el);
  if (!instance) return Promise.resolve();
  return instance.downloadImage(el, { format: 'png', scale: 2, filename: el.id });
}

export function showFailure(el, message) {
  el.classList.add('failed');
  el.textContent = message;
}

const names = (table) => table.layers.map((row) => row.name);
const volumeText = (v) => `${v.width}×${v.height}×${v.channels}`;
const hoverVolumes = (table) => table.layers.map((row) => `${row.kind} → ${volumeText(row.output)}`);

function line(x, y, name, color, extra = {}) {
  return {
    type: 'scatter',
    mode: 'lines+markers',
    x,
    y,
    name,
    line: { color, width: CHART.lineWidth },
    marker: { color, size: CHART.markerSize },
    ...extra,
  };
}

// 1. W and H on the left, D (log) on the right, one point per layer.
export function volumeFigure(table, height = CHART.height) {
  const x = names(table);
  const text = hoverVolumes(table);
  const hover = (what) => `<b>%{x}</b><br>%{text}<br>${what} %{y:,}<extra></extra>`;
  const data = [
    line(x, table.layers.map((r) => r.output.width), 'width W', COLORS.width, { text, hovertemplate: hover('W') }),
    line(x, table.layers.map((r) => r.output.height), 'height H', COLORS.height, {
      text,
      hovertemplate: hover('H'),
      line: { color: COLORS.height, width: CHART.lineWidth, dash: 'dot' },
      marker: { color: COLORS.height, size: CHART.markerSize, symbol: 'diamond-open' },
    }),
    line(x, table.layers.map((r) => r.output.channels), 'depth D', COLORS.depth, {
      text,
      hovertemplate: hover('D'),
      xaxis: 'x2',
      yaxis: 'y2',
    }),
  ];
  const layout = {
    ...baseLayout(height),
    grid: { rows: 1, columns: 2, pattern: 'independent' },
    xaxis: categoryAxis({ domain: [0, 0.47] }),
    xaxis2: categoryAxis({ domain: [0.55, 1] }),
    yaxis: valueAxis('W and H (pixels)', { rangemode: 'tozero' }),
    yaxis2: valueAxis('D (channels, log)', LOG),
    annotations: [
      {
        xref: 'x domain',
        yref: 'y domain',
        x: 1,
        y: 1,
        xanchor: 'right',
        showarrow: false,
        text: `input ${volumeText(table.input)}`,
        font: { color: COLORS.muted, size: 12 },
      },
    ],
  };
  return { data, layout };
}

// 2a. Params next to MACs per layer on one log axis; zeros simply have no bar.
export function costFigure(table, height = CHART.height) {
  const x = names(table);
  const bar = (key, name, color) => ({
    type: 'bar',
    x,
    y: table.layers.map((r) => r[key]),
    name,
    marker: { color },
    hovertemplate: `<b>%{x}</b><br>${name} %{y:,}<extra></extra>`,
  });
  const data = [bar('params', 'parameters', COLORS.params), bar('macs', 'MACs', COLORS.macs)];
  const layout = {
    ...baseLayout(height),
    barmode: 'group',
    bargap: CHART.barGap,
    xaxis: categoryAxis(),
    yaxis: valueAxis('count per layer (log)', LOG),
  };
  return { data, layout };
}

// 2b. The conv side and the FC side of both totals, each bar normalised to 100 % by Plotly.
export function shareFigure(table, height = CHART.height) {
  const t = table.totals;
  const y = ['parameters', 'MACs'];
  const side = (name, values, color) => ({
    type: 'bar',
    orientation: 'h',
    y,
    x: values,
    name,
    marker: { color },
    customdata: values,
    texttemplate: '%{customdata:.3s}',
    textposition: 'inside',
    insidetextanchor: 'middle',
    textangle: 0,
    hovertemplate: `<b>${name}</b>, %{y}: %{customdata:,}<extra></extra>`,
  });
  const data = [
    side('conv side', [t.conv_params, t.conv_macs], COLORS.convSide),
    side('FC side', [t.fc_params, t.fc_macs], COLORS.fcSide),
  ];
  const layout = {
    ...baseLayout(height),
    barmode: 'stack',
    barnorm: 'percent',
    uniformtext: { mode: 'hide', minsize: 11 },
    legend: { ...baseLayout(height).legend, traceorder: 'normal' },
    bargap: 1 - CHART.shareWidth,
    margin: { ...CHART.margin, l: 90 },
    xaxis: valueAxis('share of the total (%)', { range: [0, 100], ticksuffix: ' %' }),
    yaxis: { automargin: true, tickfont: { size: 13 } },
  };
  return { data, layout };
}

// 4. Receptive field per layer, with the input width as a reference line.
export function rfFigure(table, height = CHART.height) {
  const x = names(table);
  const data = [
    line(x, table.layers.map((r) => r.receptive_field), 'receptive field', COLORS.rf, {
      text: table.layers.map((r) => (r.jump ? `units ${r.jump} px apart` : 'sees the whole image')),
      hovertemplate: '<b>%{x}</b><br>sees %{y}×%{y} input pixels<br>%{text}<extra></extra>',
      fill: 'tozeroy',
      fillcolor: 'rgba(234, 88, 12, 0.08)',
    }),
  ];
  const layout = {
    ...baseLayout(height),
    showlegend: false,
    xaxis: categoryAxis(),
    yaxis: valueAxis('receptive field (input pixels per side)', { rangemode: 'tozero' }),
    shapes: [
      {
        type: 'line',
        xref: 'paper',
        x0: 0,
        x1: 1,
        y0: table.input.width,
        y1: table.input.width,
        line: { color: COLORS.imageLine, dash: 'dash', width: 1.5 },
      },
    ],
    annotations: [
      {
        xref: 'paper',
        x: 0.01,
        y: table.input.width,
        yanchor: 'bottom',
        xanchor: 'left',
        showarrow: false,
        text: `input width ${table.input.width}`,
        font: { color: COLORS.muted, size: 12 },
      },
    ],
  };
  return { data, layout };
}

// Home: ILSVRC top-5 error by year, depth beside it.
export function timelineFigure(timeline, height = CHART.height + 40) {
  const x = timeline.points.map((p) => `${p.year} · ${p.entry.split(' (')[0]}`);
  const verdicts = timeline.points.map((p) => `lecture: ${p.verdict.stated} (${p.verdict.verdict})`);
  const data = [
    {
      type: 'bar',
      x,
      y: timeline.points.map((p) => p.top5_error),
      name: 'top-5 error (%)',
      marker: { color: COLORS.error },
      text: timeline.points.map((p) => `${p.top5_error} %`),
      textposition: 'outside',
      cliponaxis: false,
      customdata: verdicts,
      hovertemplate: '<b>%{x}</b><br>top-5 error %{y} %<br>%{customdata}<extra></extra>',
    },
    {
      type: 'bar',
      x,
      y: timeline.points.map((p) => p.depth),
      name: 'depth (layers with weights)',
      marker: { color: COLORS.depthBars },
      text: timeline.points.map((p) => (p.depth === null ? 'n/a' : String(p.depth))),
      textposition: 'outside',
      cliponaxis: false,
      xaxis: 'x2',
      yaxis: 'y2',
      hovertemplate: '<b>%{x}</b><br>depth %{y}<extra></extra>',
    },
  ];
  const layout = {
    ...baseLayout(height),
    margin: { ...CHART.margin, t: 48, b: 120 },
    grid: { rows: 1, columns: 2, pattern: 'independent' },
    xaxis: categoryAxis({ domain: [0, 0.56], tickangle: -30, tickfont: { size: 12 } }),
    xaxis2: categoryAxis({ domain: [0.64, 1], tickangle: -30, tickfont: { size: 12 } }),
    yaxis: valueAxis('top-5 error (%)', { rangemode: 'tozero' }),
    yaxis2: valueAxis('depth (layers with weights)', { rangemode: 'tozero' }),
  };
  return { data, layout };
}

// Compare: both nets per aligned stage, width on the left and depth on the right.
export function overlayFigures(comparison, height = CHART.height) {
  const x = comparison.stages.map((s) => `${s.position} · ${[s.a?.label, s.b?.label].filter(Boolean).join(' / ')}`);
  const trace = (side, name, color, key, extra = {}) =>
    line(x, comparison.stages.map((s) => (s[side] ? s[side].output[key] : null)), name, color, {
      connectgaps: true,
      text: comparison.stages.map((s) => (s[side] ? `${s[side].label}: ${volumeText(s[side].output)}` : 'no such stage')),
      hovertemplate: '%{text}<extra>' + name + '</extra>',
      ...extra,
    });
  const nameA = `A · ${comparison.a.name}`;
  const nameB = `B · ${comparison.b.name}`;
  const dashB = (color) => ({ line: { color, width: CHART.lineWidth, dash: 'dash' }, marker: { color, size: CHART.markerSize, symbol: 'square' } });
  const layout = (title, extra) => ({
    ...baseLayout(height),
    legend: { orientation: 'h', x: 0, y: 1.14, font: { size: 12 } },
    xaxis: categoryAxis(),
    yaxis: valueAxis(title, extra),
  });
  return {
    sides: {
      data: [
        trace('a', nameA, COLORS.netA, 'width'),
        trace('b', nameB, COLORS.netB, 'width', dashB(COLORS.netB)),
      ],
      layout: layout('output width (pixels)', { rangemode: 'tozero' }),
    },
    depth: {
      data: [
        trace('a', nameA, COLORS.netA, 'channels'),
        trace('b', nameB, COLORS.netB, 'channels', dashB(COLORS.netB)),
      ],
      layout: layout('output depth (channels, log)', LOG),
    },
  };
}

// After two plots are drawn, give both the union of their autoranged axes, so the charts of
// two nets side by side read on the same scale (and, for the boxes, at the same height).
export function shareRanges(elements, axes) {
  const update = { height: Math.max(...elements.map((el) => el.layout.height)) };
  for (const axis of axes) {
    const ranges = elements.map((el) => el._fullLayout?.[axis]?.range).filter(Boolean);
    if (ranges.length !== elements.length) continue;
    const low = Math.min(...ranges.map((r) => r[0]));
    const high = Math.max(...ranges.map((r) => r[1]));
    update[`${axis}.range`] = [low, high];
    update[`${axis}.autorange`] = false;
  }
  elements.forEach((el) => fitHeight(el, update.height));
  return Promise.all(elements.map((el) => drawnWith.get(el)?.relayout(el, update)));
}

// Live inference: one net's top-5 as horizontal bars, the most probable on top. The axis starts
// at zero and is as long as the longest bar, so an untrained net's 0.1 % bars still read, with
// every bar's exact probability written beside it.
export function top5Figure(result, color = COLORS.top5, height = PREDICT.top5Height) {
  const rows = [...result.top5].reverse(); // Plotly draws the first category at the bottom
  const data = [
    {
      type: 'bar',
      orientation: 'h',
      x: rows.map((row) => row.probability),
      y: rows.map((row) => `${row.rank}. ${row.label}`),
      marker: { color },
      texttemplate: '%{x:.3p}',
      textposition: 'outside',
      cliponaxis: false,
      customdata: rows.map((row) => row.index),
      hovertemplate: '<b>%{y}</b><br>probability %{x:.3p}<br>ImageNet class %{customdata}<extra></extra>',
    },
  ];
  const layout = {
    ...baseLayout(height),
    margin: { ...PREDICT.top5Margin },
    showlegend: false,
    bargap: CHART.barGap,
    xaxis: valueAxis('probability', { tickformat: '.2~p', rangemode: 'tozero', nticks: 5 }),
    yaxis: { automargin: true, tickfont: { size: 13 }, ticksuffix: '  ' },
  };
  return { data, layout };
}
