// One net's per-layer figures, and the compare page's overlay, from the table (or comparison)
// JSON the page carries. Nothing here computes a figure about a net: every number plotted or
// written is a field of that JSON; the code picks which rows to show, lays them out and formats
// them (format.js: an SI prefix chosen per value on the axes, the exact count on hover).

import { baseLayout, categoryAxis, line, logAxis, stacked, valueAxis } from './charts.js';
import { CHART, COLORS, VIEWS } from './config.js';
import { exactCount, siCount } from './format.js';

const volumeText = (v) => `${v.width}×${v.height}×${v.channels}`;
const units = (n) => `${exactCount(n)} unit${n === 1 ? '' : 's'}`;
// After flatten a layer's output is a vector of units (the table marks it with no jump): the
// depth chart draws those apart from conv channels.
const isVector = (point) => point.jump === null;

// The points a chart shows: every layer, or blocks (one per conv, pool and FC layer, with the
// layers after it that only pass its volume on: ReLU, LRN, batch norm, dropout, flatten,
// softmax). A block shows its opening layer's own numbers; the others are named in the hover.
export function chartPoints(table, view = VIEWS.default) {
  if (view === 'all') return table.layers.map((row) => ({ ...row, folded: [] }));
  const points = [];
  for (const row of table.layers) {
    const opens = VIEWS.blockKinds.includes(row.kind);
    if (opens || points.length === 0) points.push({ ...row, folded: [] });
    else points[points.length - 1].folded.push(row);
  }
  return points;
}

function pointTitle(point) {
  const folded = point.folded.map((row) => row.name);
  return folded.length ? `<b>${point.name}</b> (+ ${folded.join(', ')})` : `<b>${point.name}</b>`;
}

function volumeHover(point) {
  const what = isVector(point) ? units(point.output.channels) : `${volumeText(point.output)} (W×H×D)`;
  return `${pointTitle(point)}<br>${point.kind} → ${what}`;
}

// Where the FC part of a depth chart starts: a shaded band says "units" over it.
function unitsBand(names, firstUnit, axis) {
  if (firstUnit < 0) return { shapes: [], annotations: [] };
  const shape = {
    type: 'rect',
    xref: axis.x,
    yref: `${axis.y} domain`,
    x0: firstUnit - 0.5,
    x1: names.length - 0.5,
    y0: 0,
    y1: 1,
    fillcolor: COLORS.unitsBand,
    line: { width: 0 },
    layer: 'below',
  };
  // Inside the band at its foot, where a log axis of units has no points: never on the legend.
  const note = {
    xref: axis.x,
    yref: `${axis.y} domain`,
    x: (firstUnit - 0.5 + names.length - 0.5) / 2,
    y: 0,
    yanchor: 'bottom',
    showarrow: false,
    text: 'FC: units',
    font: { color: COLORS.unitsText, size: 12 },
  };
  return { shapes: [shape], annotations: [note] };
}

// 1. W and H on the left (the input, then every layer with a spatial output), D on the right
// (log): conv channels and FC units as two traces, the units on a shaded band.
export function volumeFigure(table, { view, width } = {}) {
  const points = chartPoints(table, view);
  const spatial = points.filter((p) => !isVector(p));
  const vectors = points.filter(isVector);
  const input = { name: 'input', kind: 'input', output: table.input, folded: [], jump: 1 };
  const sides = [input, ...spatial];
  const x = sides.map((p) => p.name);
  const text = sides.map(volumeHover);
  const hover = (what) => `%{text}<br>${what} %{y:,}<extra></extra>`;
  const depthNames = [...x, ...vectors.map((p) => p.name)];
  const inRows = stacked(width);
  const data = [
    line(x, sides.map((p) => p.output.width), 'width W', COLORS.width, { text, hovertemplate: hover('W') }),
    line(x, sides.map((p) => p.output.height), 'height H', COLORS.height, {
      text,
      hovertemplate: hover('H'),
      line: { color: COLORS.height, width: CHART.lineWidth, dash: 'dot' },
      marker: { color: COLORS.height, size: CHART.markerSize, symbol: 'diamond-open' },
    }),
    line(x, sides.map((p) => p.output.channels), 'channels D (conv, pool)', COLORS.depth, {
      text,
      hovertemplate: hover('D'),
      xaxis: 'x2',
      yaxis: 'y2',
    }),
    line(vectors.map((p) => p.name), vectors.map((p) => p.output.channels), 'units (FC)', COLORS.units, {
      text: vectors.map(volumeHover),
      hovertemplate: hover('units'),
      marker: { color: COLORS.units, size: CHART.markerSize + 1, symbol: 'square' },
      xaxis: 'x2',
      yaxis: 'y2',
    }),
  ];
  const band = unitsBand(depthNames, vectors.length ? x.length : -1, { x: 'x2', y: 'y2' });
  const depthValues = [...sides, ...vectors].map((p) => p.output.channels);
  const layout = {
    ...baseLayout(inRows ? CHART.stackedHeight : CHART.height, width),
    grid: inRows
      ? { rows: 2, columns: 1, pattern: 'independent', roworder: 'top to bottom' }
      : { rows: 1, columns: 2, pattern: 'independent' },
    xaxis: categoryAxis(width, inRows ? {} : { domain: [0, 0.47] }),
    xaxis2: categoryAxis(width, { ...(inRows ? {} : { domain: [0.55, 1] }), categoryorder: 'array', categoryarray: depthNames }),
    yaxis: valueAxis('W and H (pixels)', { rangemode: 'tozero' }),
    yaxis2: logAxis('D: channels · FC: units (log)', depthValues),
    shapes: band.shapes,
    annotations: band.annotations,
  };
  return { data, layout };
}

// Bars of one count per point on a log axis; zeros have no bar. In blocks, a folded layer with
// parameters of its own (batch norm) is named in the hover with its count, never added in.
function foldedCosts(point, key) {
  return point.folded
    .filter((row) => row[key] > 0)
    .map((row) => `<br>+ ${row.name}: ${exactCount(row[key])} more (its own ${row.kind} row)`)
    .join('');
}

// 2a. Params next to MACs per layer on one log axis.
export function costFigure(table, { view, width } = {}) {
  const points = chartPoints(table, view);
  const x = points.map((p) => p.name);
  const bar = (key, name, color) => ({
    type: 'bar',
    x,
    y: points.map((p) => p[key]),
    name,
    marker: { color },
    customdata: points.map((p) => [exactCount(p[key]), siCount(p[key]), foldedCosts(p, key), pointTitle(p)]),
    hovertemplate: `%{customdata[3]}<br>${name}: %{customdata[0]} (%{customdata[1]})%{customdata[2]}<extra></extra>`,
  });
  const data = [bar('params', 'parameters', COLORS.params), bar('macs', 'MACs', COLORS.macs)];
  const values = points.flatMap((p) => [p.params, p.macs]);
  const layout = {
    ...baseLayout(CHART.height, width),
    barmode: 'group',
    bargap: CHART.barGap,
    xaxis: categoryAxis(width),
    yaxis: logAxis('count per layer (log)', values),
  };
  return { data, layout };
}

// 2b. The conv side and the FC side of both totals, each bar normalised to 100 % by Plotly.
export function shareFigure(table, { width } = {}) {
  const t = table.totals;
  const y = ['parameters', 'MACs'];
  const side = (name, values, color) => ({
    type: 'bar',
    orientation: 'h',
    y,
    x: values,
    name,
    marker: { color },
    customdata: values.map((v) => [exactCount(v), siCount(v)]),
    text: values.map(siCount),
    texttemplate: '%{text}',
    textposition: 'inside',
    insidetextanchor: 'middle',
    textangle: 0,
    hovertemplate: `<b>${name}</b>, %{y}: %{customdata[0]} (%{customdata[1]})<extra></extra>`,
  });
  const data = [
    side('conv side', [t.conv_params, t.conv_macs], COLORS.convSide),
    side('FC side', [t.fc_params, t.fc_macs], COLORS.fcSide),
  ];
  const base = baseLayout(CHART.height, width);
  const layout = {
    ...base,
    barmode: 'stack',
    barnorm: 'percent',
    uniformtext: { mode: 'hide', minsize: 11 },
    legend: { ...base.legend, traceorder: 'normal' },
    bargap: 1 - CHART.shareWidth,
    margin: { ...base.margin, r: Math.max(base.margin.r, CHART.shareRightMargin) },
    xaxis: valueAxis('share (%)', { range: [0, 100], ticksuffix: ' %' }),
    yaxis: { automargin: true, tickfont: { size: 13 } },
  };
  return { data, layout };
}

// 4. Receptive field per layer, with the input width as a reference line.
export function rfFigure(table, { view, width } = {}) {
  const points = chartPoints(table, view);
  const data = [
    line(points.map((p) => p.name), points.map((p) => p.receptive_field), 'receptive field', COLORS.rf, {
      text: points.map((p) => `${pointTitle(p)}<br>${p.jump ? `units ${p.jump} px apart` : 'sees the whole image'}`),
      hovertemplate: '%{text}<br>sees %{y}×%{y} input pixels<extra></extra>',
      fill: 'tozeroy',
      fillcolor: COLORS.rfFill,
    }),
  ];
  const layout = {
    ...baseLayout(CHART.height, width),
    showlegend: false,
    xaxis: categoryAxis(width),
    yaxis: valueAxis('receptive field (pixels per side)', { rangemode: 'tozero' }),
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

// Compare: both nets per aligned stage, the input first; width on the left, depth (log) on the
// right, where the FC stages (units, not channels) sit on a shaded band.
export function overlayFigures(comparison, { width } = {}) {
  const inputStage = { position: 0, category: 'input', a: { label: 'input', output: comparison.a.input }, b: { label: 'input', output: comparison.b.input } };
  const stages = [inputStage, ...comparison.stages];
  const x = stages.map((s) => `${s.position} · ${[s.a?.label, s.b?.label].filter(Boolean).join(' / ')}`);
  const vector = (s) => s.category === 'fc' || s.category === 'flatten';
  const trace = (side, name, color, key, extra = {}) =>
    line(x, stages.map((s) => (s[side] ? s[side].output[key] : null)), name, color, {
      connectgaps: true,
      text: stages.map((s) => {
        if (!s[side]) return 'no such stage';
        const out = s[side].output;
        return `${s[side].label}: ${vector(s) ? units(out.channels) : `${volumeText(out)} (W×H×D)`}`;
      }),
      hovertemplate: `%{text}<extra>${name}</extra>`,
      ...extra,
    });
  const nameA = `A · ${comparison.a.name}`;
  const nameB = `B · ${comparison.b.name}`;
  const dashB = (color) => ({ line: { color, width: CHART.lineWidth, dash: 'dash' }, marker: { color, size: CHART.markerSize, symbol: 'square' } });
  const firstUnit = stages.findIndex(vector);
  const band = unitsBand(x, firstUnit, { x: 'x', y: 'y' });
  const layout = (axis, extra = {}) => ({
    ...baseLayout(CHART.height, width),
    xaxis: categoryAxis(width),
    yaxis: axis,
    ...extra,
  });
  // FC stages have units, not a width: the width chart leaves them out.
  const widths = (side, name, color, extra) => {
    const drawn = trace(side, name, color, 'width', extra);
    return { ...drawn, y: drawn.y.map((value, i) => (vector(stages[i]) ? null : value)) };
  };
  const depths = stages.flatMap((s) => [s.a?.output.channels, s.b?.output.channels]).filter(Boolean);
  return {
    sides: {
      data: [widths('a', nameA, COLORS.netA), widths('b', nameB, COLORS.netB, dashB(COLORS.netB))],
      layout: layout(valueAxis('output width W (pixels)', { rangemode: 'tozero' })),
    },
    depth: {
      data: [trace('a', nameA, COLORS.netA, 'channels'), trace('b', nameB, COLORS.netB, 'channels', dashB(COLORS.netB))],
      layout: layout(logAxis('D: channels · FC: units (log)', depths), band),
    },
  };
}
