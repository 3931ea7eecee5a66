// The volumes as boxes, in order, like the classic AlexNet figure. One 3D layout of boxes is
// drawn two ways: an oblique projection with the always-loaded cartesian Plotly, and, on
// request, a rotatable WebGL view with Plotly's gl3d bundle, loaded only then.

import { BOXES, BOX_COLORS, BOX_EDGE, BOX_KIND_OF, CHART, COLORS, FONT } from './config.js';
import { draw, purge } from './charts.js';
import { exactCount } from './format.js';

const volumeText = (v) => `${v.width}×${v.height}×${v.channels}`;
const sameVolume = (a, b) => a.width === b.width && a.height === b.height && a.channels === b.channels;
const scaled = (value, { scale, exponent }) => scale * value ** exponent;

// Stages to draw: the input, then each shaping layer with the layers after it that keep its
// volume (ReLU, LRN, batch norm, dropout, a pool that changes nothing). Two convs or two FC
// layers of the same size stay two boxes.
export function boxGroups(table) {
  const groups = [{ kind: 'input', label: 'input', names: ['input'], volume: table.input, vector: false }];
  for (const row of table.layers) {
    const last = groups[groups.length - 1];
    const kind = BOX_KIND_OF[row.kind];
    const keepsVolume = kind === undefined || kind === 'pool';
    if (keepsVolume && sameVolume(last.volume, row.output)) {
      last.names.push(row.name);
      continue;
    }
    groups.push({
      kind: kind ?? 'other',
      label: row.name,
      names: [row.name],
      volume: row.output,
      vector: row.jump === null, // after flatten: a vector of units, drawn as a thin upright bar
    });
  }
  return groups;
}

// Each group's box in 3D: x runs along the net (the box's thickness is its depth D), y is the
// width W receding into the page, z the height H, centred on the axis of the net.
export function boxLayout(table) {
  let x = 0;
  let previous = null;
  return boxGroups(table).map((group) => {
    const v = group.volume;
    const size = group.vector
      ? { d: BOXES.vector.thickness, w: BOXES.vector.thickness, h: scaled(v.channels, BOXES.vector) }
      : { d: scaled(v.channels, BOXES.depth), w: scaled(v.width, BOXES.side), h: scaled(v.height, BOXES.side) };
    if (previous) {
      const resized = previous.volume.width !== v.width || previous.volume.height !== v.height;
      x += resized ? BOXES.gapNewSize : BOXES.gapSameSize;
    }
    const box = { ...group, x0: x, x1: x + size.d, y0: 0, y1: size.w, z0: -size.h / 2, z1: size.h / 2 };
    x = box.x1;
    previous = group;
    return box;
  });
}

function hoverText(box) {
  const layers = box.names.join(' · ');
  const what = box.vector ? `${box.volume.channels.toLocaleString('en')} units` : volumeText(box.volume);
  return `<b>${box.label}</b>: ${what}<br>${layers}`;
}

// Oblique projection: a point (x, y, z) lands at (x + k·y·cos a, z + k·y·sin a).
function project(x, y, z) {
  const k = BOXES.receding;
  return [x + k * y * Math.cos(BOXES.angle), z + k * y * Math.sin(BOXES.angle)];
}

function face(points, color, text, box) {
  const projected = [...points, points[0]].map(([x, y, z]) => project(x, y, z));
  return {
    type: 'scatter',
    mode: 'lines',
    x: projected.map((p) => p[0]),
    y: projected.map((p) => p[1]),
    fill: 'toself',
    fillcolor: color,
    line: { color: BOX_EDGE, width: BOXES.edgeWidth },
    hoveron: 'fills',
    text,
    hoverinfo: 'text',
    showlegend: false,
    name: box.label,
  };
}

function obliqueTraces(box) {
  const { x0, x1, y0, y1, z0, z1 } = box;
  const colors = BOX_COLORS[box.kind] ?? BOX_COLORS.other;
  const text = hoverText(box);
  return [
    face([[x0, y0, z0], [x1, y0, z0], [x1, y0, z1], [x0, y0, z1]], colors.front, text, box),
    face([[x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]], colors.top, text, box),
    face([[x1, y0, z0], [x1, y1, z0], [x1, y1, z1], [x1, y0, z1]], colors.side, text, box),
  ];
}

function labelText(box) {
  const what = box.vector ? `${exactCount(box.volume.channels)} units` : volumeText(box.volume);
  return `${box.label}<br>${what}`;
}

// Labels hang under the boxes, two lines each (name, W×H×D), level, in lanes below the lowest
// box: a label goes to the highest lane where it clears the one before it, and a thin line
// leads up to its box, so the thin FC boxes (fc6, fc7, fc8) keep readable labels at any width.
// A label's left and right edges in px from the plot's left, centred under its box but kept
// inside the plot: `shift` moves one that would stick out at an end back in.
function labelSpan(x, width, plotWidth) {
  const left = Math.min(Math.max(0, x - width / 2), Math.max(0, plotWidth - width));
  return { left, right: left + width, shift: left - (x - width / 2) };
}

function labelAnnotations(boxes, pxPerUnit, size) {
  const bottoms = boxes.map((box) => project((box.x0 + box.x1) / 2, 0, box.z0));
  const baseline = Math.min(...bottoms.map((point) => point[1]));
  const plotWidth = size.width * pxPerUnit;
  const lanes = [];
  const annotations = boxes.map((box, i) => {
    const [x, y] = bottoms[i];
    const widest = Math.max(...labelText(box).split('<br>').map((part) => part.length));
    const span = labelSpan((x - size.x[0]) * pxPerUnit, BOXES.label.charPx * widest, plotWidth);
    let lane = lanes.findIndex((end) => end + BOXES.label.gapPx <= span.left);
    if (lane < 0) lane = lanes.length;
    lanes[lane] = span.right;
    const drop = (BOXES.label.firstPx + lane * BOXES.label.lanePx) / pxPerUnit;
    return {
      x,
      y,
      text: labelText(box),
      showarrow: true,
      arrowhead: 0,
      arrowwidth: 1,
      arrowcolor: COLORS.axis,
      axref: 'x',
      ayref: 'y',
      ax: x,
      ay: baseline - drop,
      xshift: span.shift,
      yanchor: 'top',
      align: 'center',
      font: { size: BOXES.label.fontSize, color: COLORS.muted },
      bgcolor: COLORS.paper,
    };
  });
  // Drawn right to left: a lower label's leader line passes behind the labels left of it.
  return { annotations: annotations.reverse(), lanes: lanes.length };
}

// The drawing's bounds, padded a little. The axes take these as their ranges: Plotly's own
// autorange would also make room for the labels' leader lines, and shrink the boxes.
function extent(boxes) {
  const corners = boxes.flatMap((b) => [project(b.x0, b.y0, b.z0), project(b.x1, b.y1, b.z1)]);
  const bounds = (values) => {
    const low = Math.min(...values);
    const high = Math.max(...values);
    const pad = (high - low) * BOXES.rangePadding;
    return [low - pad, high + pad];
  };
  const x = bounds(corners.map((p) => p[0]));
  const y = bounds(corners.map((p) => p[1]));
  return { x, y, width: x[1] - x[0], height: y[1] - y[0] };
}

export function obliqueFigure(table, widthPx) {
  const boxes = boxLayout(table);
  const size = extent(boxes);
  const plotWidth = (widthPx || BOXES.assumedWidth) - 2 * BOXES.sideMargin;
  const wanted = plotWidth * (size.height / size.width);
  const plotHeight = Math.min(BOXES.maxPlotHeight, Math.max(BOXES.minPlotHeight, wanted));
  // Drawn to fit both ways (one unit across is one unit up): the narrower fit sets the scale.
  const pxPerUnit = Math.min(plotWidth / size.width, plotHeight / size.height);
  const labels = labelAnnotations(boxes, pxPerUnit, size);
  const margin = {
    l: BOXES.sideMargin,
    r: BOXES.sideMargin,
    t: 10,
    b: BOXES.label.firstPx + (labels.lanes - 1) * BOXES.label.lanePx + BOXES.label.heightPx,
  };
  return {
    data: boxes.flatMap(obliqueTraces),
    layout: {
      height: Math.round(plotHeight + margin.t + margin.b),
      margin,
      font: { ...FONT },
      paper_bgcolor: COLORS.paper,
      plot_bgcolor: COLORS.paper,
      hovermode: 'closest',
      hoverlabel: { font: { family: FONT.family, size: 13 } },
      showlegend: false,
      xaxis: { visible: false, constrain: 'domain', range: size.x },
      yaxis: { visible: false, scaleanchor: 'x', scaleratio: 1, range: size.y },
      annotations: labels.annotations,
    },
    boxes,
  };
}

// The 12 triangles of a box's 8 corners, for mesh3d.
const CORNERS = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]];
const TRIANGLES = {
  i: [0, 0, 4, 4, 0, 0, 3, 3, 0, 0, 1, 1],
  j: [1, 2, 5, 6, 1, 5, 2, 6, 3, 7, 2, 6],
  k: [2, 3, 6, 7, 5, 4, 6, 7, 7, 4, 6, 5],
};

function meshTrace(box) {
  const pick = (flag, low, high) => (flag ? high : low);
  return {
    type: 'mesh3d',
    x: CORNERS.map((c) => pick(c[0], box.x0, box.x1)),
    y: CORNERS.map((c) => pick(c[1], box.y0, box.y1)),
    z: CORNERS.map((c) => pick(c[2], box.z0, box.z1)),
    ...TRIANGLES,
    color: (BOX_COLORS[box.kind] ?? BOX_COLORS.other).front,
    flatshading: true,
    lighting: { ambient: 0.55, diffuse: 0.7, specular: 0.1 },
    text: hoverText(box),
    hoverinfo: 'text',
    name: box.label,
  };
}

// Each box's name and W×H×D above its top, in the scene: they turn with it.
function sceneLabel(box) {
  return {
    x: (box.x0 + box.x1) / 2,
    y: (box.y0 + box.y1) / 2,
    z: box.z1,
    text: labelText(box),
    showarrow: true,
    arrowhead: 0,
    arrowcolor: COLORS.axis,
    ax: 0,
    ay: -BOXES.label.firstPx,
    font: { size: BOXES.label.fontSize, color: FONT.color },
    bgcolor: COLORS.labelBackground,
  };
}

export function meshFigure(table, height = CHART.boxesHeight) {
  const hidden = { visible: false, showspikes: false };
  const boxes = boxLayout(table);
  return {
    data: boxes.map(meshTrace),
    layout: {
      height,
      margin: { l: 0, r: 0, t: 0, b: 0 },
      font: { ...FONT },
      paper_bgcolor: COLORS.paper,
      showlegend: false,
      scene: {
        aspectmode: 'data',
        xaxis: hidden,
        yaxis: hidden,
        zaxis: hidden,
        camera: BOXES.camera,
        annotations: boxes.map(sceneLabel),
      },
    },
  };
}

let gl3d = null;

// The gl3d bundle defines window.Plotly too; keep the cartesian one in place and hand back
// the 3D one.
function loadGl3d() {
  if (!gl3d) {
    gl3d = new Promise((resolve, reject) => {
      const cartesian = window.Plotly;
      const script = document.createElement('script');
      script.src = document.body.dataset.gl3dSrc;
      script.onload = () => {
        const loaded = window.Plotly;
        window.Plotly = cartesian;
        resolve(loaded);
      };
      script.onerror = () => reject(new Error('could not load the 3D view'));
      document.head.append(script);
    });
  }
  return gl3d;
}

const tables = new WeakMap();

export function drawBoxes(el, table) {
  tables.set(el, table);
  el.dataset.view = 'oblique';
  const figure = obliqueFigure(table, el.clientWidth);
  el.dataset.boxes = String(figure.boxes.length);
  return draw(el, figure);
}

// After two nets' boxes are put on one scale (the compare page shares their axes), their labels
// are laid out again for that scale, with room for the deeper of the two label stacks below.
export function refitLabels(elements) {
  const fits = elements.map((el) => {
    const axis = el._fullLayout.xaxis;
    const size = { x: axis.range, width: axis.range[1] - axis.range[0] };
    return labelAnnotations(boxLayout(tables.get(el)), axis._length / size.width, size);
  });
  const lanes = Math.max(...fits.map((fit) => fit.lanes));
  const bottom = BOXES.label.firstPx + (lanes - 1) * BOXES.label.lanePx + BOXES.label.heightPx;
  return Promise.all(
    elements.map((el, i) => {
      const height = el._fullLayout.height - el._fullLayout.margin.b + bottom;
      el.style.height = `${height}px`;
      return window.Plotly.relayout(el, { annotations: fits[i].annotations, 'margin.b': bottom, height });
    }),
  );
}

export async function toggle3d(el) {
  const table = tables.get(el);
  if (!table) return false;
  purge(el);
  if (el.dataset.view === '3d') {
    await drawBoxes(el, table);
    return false;
  }
  const instance = await loadGl3d();
  el.dataset.view = '3d';
  await draw(el, meshFigure(table), instance);
  return true;
}

