// Figures drawn from the API's JSON. Nothing here computes a figure about a net: every number
// plotted is a field of the table, timeline or comparison JSON; the code only lays it out.

import { CHART, COLORS, FONT, PLOTLY_CONFIG, PREDICT } from './config.js';
import { siCount } from './format.js';
import { saveBlob } from './save.js';

// The Plotly instance that drew each element (the 3D view uses the lazily loaded gl3d one), and
// what its PNG is called and titled.
const drawnWith = new WeakMap();
const exportOf = new WeakMap();

export function plotly() {
  return window.Plotly;
}

// Below this width a figure lays out for a phone: panels stacked, smaller margins and fonts.
export const narrow = (width) => Boolean(width) && width < CHART.narrowWidth;
// Below this width the volume chart stacks its two panels.
export const stacked = (width) => Boolean(width) && width < CHART.stackBelow;
// Which layout a width gets: a figure is redrawn when this changes.
export const layoutOf = (width) => (narrow(width) ? 'narrow' : stacked(width) ? 'stacked' : 'wide');

// The legend sits above the plot, outside it, so it never covers a point; Plotly grows the
// top margin to fit it when it wraps onto more lines at a phone's width.
export function baseLayout(height, width) {
  const small = narrow(width);
  return {
    height,
    margin: { ...(small ? CHART.narrowMargin : CHART.margin) },
    font: { ...FONT, size: small ? FONT.narrowSize : FONT.size },
    paper_bgcolor: COLORS.paper,
    plot_bgcolor: COLORS.paper,
    hoverlabel: { font: { family: FONT.family, size: 13 } },
    legend: { orientation: 'h', x: 0, xanchor: 'left', y: 1, yanchor: 'bottom', yref: 'paper', font: { size: small ? 11 : 13 } },
  };
}

export function categoryAxis(width, extra = {}) {
  return {
    type: 'category',
    tickangle: CHART.tickAngle,
    tickfont: { size: narrow(width) ? CHART.narrowTickFont : CHART.tickFont },
    automargin: true,
    linecolor: COLORS.axis,
    ...extra,
  };
}

export function valueAxis(title, extra = {}) {
  return {
    title: { text: title, font: { size: 13 }, standoff: 8 },
    gridcolor: COLORS.grid,
    zerolinecolor: COLORS.grid,
    linecolor: COLORS.axis,
    automargin: true,
    ...extra,
  };
}

// A log axis labelled only at the decades the values span (1, 10, 100, 1 K...: the minor 2s
// and 5s crowd a projector), each written by the one number formatter.
export function logAxis(title, values) {
  const positive = values.filter((v) => v > 0);
  if (!positive.length) return valueAxis(title, { type: 'log' });
  const low = Math.floor(Math.log10(Math.min(...positive)));
  const high = Math.ceil(Math.log10(Math.max(...positive)));
  const tickvals = Array.from({ length: high - low + 1 }, (_, i) => 10 ** (low + i));
  return valueAxis(title, { type: 'log', tickvals, ticktext: tickvals.map(siCount) });
}

export function line(x, y, name, color, extra = {}) {
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

// The element is as tall as its figure. Plotly's responsive resize (a window resized, a page
// printed or captured whole) autosizes both sides from the element: the width follows the
// page, and the height stays the figure's instead of collapsing to the element's border.
function fitHeight(el, height) {
  if (height) el.style.height = `${height}px`;
}

// The PNG a chart downloads: <net>-<chart>.png, titled with the net and the chart. The chart's
// title is its figure's heading on the page; `net` is {id, name} of what it shows.
export function setExport(el, net) {
  const heading = el.closest('figure')?.querySelector('figcaption h3, figcaption h2')?.textContent ?? '';
  const chart = heading.replace(/^\s*\d+\s*·\s*/, '').replace(/\s*·\s*[AB]$/, '').trim();
  const slug = (text) => text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  exportOf.set(el, {
    filename: `${slug(net.id || net.name) || 'net'}-${el.dataset.chart || slug(chart) || 'chart'}`,
    title: [net.name, chart].filter(Boolean).join(' · '),
  });
}

export function draw(el, figure, instance = plotly()) {
  drawnWith.set(el, instance);
  fitHeight(el, figure.layout.height);
  const config = {
    ...PLOTLY_CONFIG,
    // On a phone the tool bar would sit over the legend; the page's own buttons remain.
    displayModeBar: narrow(el.clientWidth) ? false : 'hover',
    modeBarButtonsToAdd: [
      { name: 'downloadTitledPng', title: 'Download this chart as a PNG', icon: instance.Icons.camera, click: () => downloadPng(el) },
    ],
  };
  return instance.react(el, figure.data, figure.layout, config);
}

export function purge(el) {
  const instance = drawnWith.get(el);
  if (instance) instance.purge(el);
  drawnWith.delete(el);
}

function dataUrlBlob(url) {
  const [head, body] = url.split(',');
  const bytes = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: head.slice(5).split(';')[0] });
}

// The chart as drawn, with its title on top, at twice the pixels; saved as <net>-<chart>.png.
export async function downloadPng(el) {
  const instance = drawnWith.get(el);
  if (!instance) return null;
  const { filename, title } = exportOf.get(el) ?? { filename: el.id, title: '' };
  const extra = title ? CHART.exportTitleSpace : 0;
  const layout = {
    ...el.layout,
    title: { text: title, x: 0.01, xanchor: 'left', y: 1, yanchor: 'top', yref: 'container', pad: { t: 12 }, font: { size: 16 } },
    margin: { ...el.layout.margin, t: (el.layout.margin?.t ?? 0) + extra },
    height: el.layout.height + extra,
  };
  const url = await instance.toImage({ data: el.data, layout }, { format: 'png', scale: 2, width: el.clientWidth, height: layout.height });
  saveBlob(dataUrlBlob(url), `${filename}.png`);
  return `${filename}.png`;
}

export function showFailure(el, message) {
  el.classList.add('failed');
  el.textContent = message;
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
    xaxis: categoryAxis(null, { domain: [0, 0.56], tickangle: -30, tickfont: { size: 12 } }),
    xaxis2: categoryAxis(null, { domain: [0.64, 1], tickangle: -30, tickfont: { size: 12 } }),
    yaxis: valueAxis('top-5 error (%)', { rangemode: 'tozero' }),
    yaxis2: valueAxis('depth (layers with weights)', { rangemode: 'tozero' }),
  };
  return { data, layout };
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
