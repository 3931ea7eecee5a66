// Visual constants, as data: colours, sizes, scales and Plotly options. No numbers about nets.

export const FONT = {
  family: 'Inter, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
  size: 14,
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
  netB: '#e11d48',
  grid: '#e2e8f0',
  axis: '#94a3b8',
  muted: '#64748b',
  paper: '#ffffff',
  imageLine: '#94a3b8',
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
  labelAngle: -55,
  minHeight: 240,
  camera: { eye: { x: -0.45, y: -1.65, z: 0.75 } },
};

export const CHART = {
  height: 400,
  pairHeight: 340,
  boxesHeight: 360,
  margin: { l: 70, r: 24, t: 36, b: 96 },
  tickAngle: -55,
  tickFont: 11,
  markerSize: 7,
  lineWidth: 2.5,
  barGap: 0.25,
  shareWidth: 0.6,
};

export const PLOTLY_CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ['lasso2d', 'select2d', 'autoScale2d'],
  toImageButtonOptions: { format: 'png', scale: 2 },
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
