// The volumes as boxes, in order, like the classic AlexNet figure. One 3D layout of boxes is
// drawn two ways: an oblique projection with the always-loaded cartesian Plotly, and, on
// request, a rotatable WebGL view with Plotly's gl3d bundle, loaded only then.

import { BOXES, BOX_COLORS, BOX_EDGE, BOX_KIND_OF, CHART, COLORS, FONT } from './config.js';
import { draw, purge } from './charts.js';

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

function labelAnnotation(box) {
  const [x, y] = project((box.x0 + box.x1) / 2, 0, box.z0);
  return {
    x,
    y,
    text: box.label,
    showarrow: false,
    yanchor: 'top',
    xanchor: 'right',
    textangle: BOXES.labelAngle,
    font: { size: 11, color: COLORS.muted },
  };
}

// Boxes keep their proportions (one unit across is one unit up), so a long, flat net like VGG
// gets a shorter chart instead of a tall band of white above and below it.
function fittedHeight(boxes, widthPx, margin) {
  const corners = boxes.flatMap((b) => [project(b.x0, b.y0, b.z0), project(b.x1, b.y1, b.z1)]);
  const xs = corners.map((p) => p[0]);
  const ys = corners.map((p) => p[1]);
  const aspect = (Math.max(...ys) - Math.min(...ys)) / (Math.max(...xs) - Math.min(...xs));
  const plotHeight = (widthPx - margin.l - margin.r) * aspect;
  return Math.min(CHART.boxesHeight, Math.max(BOXES.minHeight, plotHeight + margin.t + margin.b));
}

export function obliqueFigure(table, widthPx) {
  const boxes = boxLayout(table);
  const margin = { l: 10, r: 10, t: 10, b: 70 };
  return {
    data: boxes.flatMap(obliqueTraces),
    layout: {
      height: widthPx ? fittedHeight(boxes, widthPx, margin) : CHART.boxesHeight,
      margin,
      font: { ...FONT },
      paper_bgcolor: COLORS.paper,
      plot_bgcolor: COLORS.paper,
      hovermode: 'closest',
      hoverlabel: { font: { family: FONT.family, size: 13 } },
      showlegend: false,
      xaxis: { visible: false, constrain: 'domain' },
      yaxis: { visible: false, scaleanchor: 'x', scaleratio: 1 },
      annotations: boxes.map(labelAnnotation),
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

export function meshFigure(table, height = CHART.boxesHeight) {
  const hidden = { visible: false, showspikes: false };
  return {
    data: boxLayout(table).map(meshTrace),
    layout: {
      height,
      margin: { l: 0, r: 0, t: 0, b: 0 },
      font: { ...FONT },
      paper_bgcolor: COLORS.paper,
      showlegend: false,
      scene: { aspectmode: 'data', xaxis: hidden, yaxis: hidden, zaxis: hidden, camera: BOXES.camera },
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

