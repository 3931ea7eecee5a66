// Visual constants, as data: colours, sizes, scales and Plotly options. No numbers about nets.

export const FONT = {
  family: 'Inter, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
  size: 14,
  narrowSize: 12,
  color: '#0f172a',
};

export const COLORS = {
  width: '#2563eb',
  height: '#60a5fa',
  depth: '#dc2626',
  params: '#7c3aed',
  macs: '#0d9488',
  rf: '#ea580c',
  convSide: '#2563eb',
  fcSide: '#7c3aed',
  error: '#1e3a8a',
  depthBars: '#f59e0b',
  netA: '#2563eb',
  netB: '#be123c', // 6:1 on white, like the page's text (app.css --net-b)
  units: '#6d28d9', // FC units, told apart from conv channels (depth)
  unitsBand: 'rgba(124, 58, 237, 0.07)',
  unitsText: '#5b21b6',
  rfFill: 'rgba(234, 88, 12, 0.08)',
  grid: '#e2e8f0',
  axis: '#94a3b8',
  muted: '#576477', // app.css --muted: at least 4.5:1 on every background it sits on
  paper: '#ffffff',
  imageLine: '#94a3b8',
  labelBackground: 'rgba(255, 255, 255, 0.85)',
  top5: '#1e3a8a',
};

// Box faces for the volume view: front, top (lit) and side (shade) of each kind of stage.
export const BOX_COLORS = {
  input: { front: '#cbd5e1', top: '#e2e8f0', side: '#94a3b8' },
  conv: { front: '#3b82f6', top: '#93c5fd', side: '#1d4ed8' },
  pool: { front: '#f59e0b', top: '#fcd34d', side: '#b45309' },
  flatten: { front: '#10b981', top: '#6ee7b7', side: '#047857' },
  fc: { front: '#8b5cf6', top: '#c4b5fd', side: '#6d28d9' },
  other: { front: '#94a3b8', top: '#cbd5e1', side: '#64748b' },
};
export const BOX_EDGE = '#0f172a';

// Which drawn box a layer kind opens; the other kinds join the box before them.
export const BOX_KIND_OF = {
  conv: 'conv',
  maxpool: 'pool',
  avgpool: 'pool',
  adaptiveavgpool: 'pool',
  flatten: 'flatten',
  linear: 'fc',
};

// Box geometry: drawn size = scale * size ** exponent, so 227 pixels and 3 channels both show.
export const BOXES = {
  side: { scale: 1.0, exponent: 0.5 },
  depth: { scale: 1.0, exponent: 1 / 3 },
  vector: { scale: 0.62, exponent: 1 / 3, thickness: 1.2 },
  gapSameSize: 0.7,
  gapNewSize: 3.2,
  receding: 0.45, // how far the width axis recedes, as a share of its length (oblique view)
  angle: Math.PI / 4,
  edgeWidth: 0.8,
  minPlotHeight: 150,
  maxPlotHeight: 260,
  sideMargin: 10,
  assumedWidth: 1000, // px, when the element has no width yet
  rangePadding: 0.02, // room around the drawing, as a share of its size
  // Labels under the boxes: lanes of two-line labels, each led to its box by a thin line.
  label: { fontSize: 11, charPx: 7.2, gapPx: 10, firstPx: 18, lanePx: 30, heightPx: 34 },
  camera: { eye: { x: -0.45, y: -1.65, z: 0.75 } },
};

export const CHART = {
  height: 400,
  stackedHeight: 640, // the volume chart's two panels one above the other, at a phone's width
  pairHeight: 340,
  boxesHeight: 360,
  margin: { l: 70, r: 24, t: 36, b: 96 },
  narrowMargin: { l: 48, r: 10, t: 30, b: 70 },
  narrowWidth: 520, // px of the chart's element (a phone; not one of the compare page's pair)
  stackBelow: 720, // px: narrower, the volume chart puts its two panels one above the other
  tickAngle: -55,
  tickFont: 11,
  narrowTickFont: 10,
  shareRightMargin: 28, // room for the share axis's last label, "100 %"
  exportTitleSpace: 44, // px added on top of a downloaded PNG for its title
  markerSize: 7,
  lineWidth: 2.5,
  barGap: 0.25,
  shareWidth: 0.6,
};

// Plotly's own PNG button is replaced by ours (charts.js downloadPng: named and titled).
export const PLOTLY_CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ['lasso2d', 'select2d', 'autoScale2d', 'toImage', 'sendDataToCloud'],
};

// The per-layer charts show blocks by default: one point per conv, pool and FC layer, the layers
// that pass its volume on (ReLU, LRN, batch norm, dropout, flatten, softmax) folded into it.
// The kinds that open a block are those that open a box, but flatten (it joins the pool before).
export const VIEWS = {
  default: 'blocks',
  blockKinds: Object.keys(BOX_KIND_OF).filter((kind) => BOX_KIND_OF[kind] !== 'flatten'),
};

// The custom editor: how long typing pauses before a check, and what a new layer of each kind
// starts with (its required fields filled with a common choice; the rest take torch's defaults).
export const EDITOR = {
  debounceMs: 300,
  newLayerKind: 'conv',
  presets: {
    conv: { out_channels: 64, kernel: 3, padding: 1 },
    maxpool: { kernel: 2, stride: 2 },
    avgpool: { kernel: 2, stride: 2 },
    adaptiveavgpool: { output_size: 1 },
    lrn: { size: 5 },
    linear: { out_features: 1000 },
  },
};

// Live inference: how often a page asks again while a net's model is being built, the top-5
// chart, and the feature-map strip (each map drawn at scale * W ** exponent pixels a side, so
// 227 and 6 both show and the shrinking stays visible).
export const PREDICT = {
  recheckMs: 10000,
  retries: 2, // after a 503 that says when to come back
  top5Height: 250,
  top5Margin: { l: 10, r: 64, t: 8, b: 44 },
  uploadName: 'upload', // sent instead of the file's own name, which the server never needs
};

export const FEATURE_MAPS = {
  scale: 5.5,
  exponent: 0.5,
  min: 14,
  max: 60,
};
