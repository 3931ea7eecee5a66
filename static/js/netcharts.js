// The four per-layer charts of one net, drawn into #<prefix>-volume, -cost, -share, -boxes, -rf.
// One chart per task, in page order: the first is drawn and painted before the second starts,
// so it shows as soon as it can and the page stays responsive while the others follow.
//
// The charts with a point per layer show blocks or every layer, as the page's toggle says
// (blocks by default); each is laid out for its element's width (stacked on a phone), and is
// redrawn when the toggle changes or the width crosses from one layout to the other.

import { redrawOnLayoutChange, setExport, widthOf } from './charts.js';
import { VIEWS } from './config.js';
import { afterPaint, drawBoxesInto, drawInto } from './page.js';
import { costFigure, overlayFigures, rfFigure, shareFigure, volumeFigure } from './netfigures.js';
import { describeChart } from './chartdata.js';

export const NET_CHARTS = ['volume', 'cost', 'share', 'boxes', 'rf'];
// The charts whose points follow the toggle.
export const VIEWED = ['volume', 'cost', 'rf'];
const FIGURES = { volume: volumeFigure, cost: costFigure, share: shareFigure, rf: rfFigure };

const views = new Map(); // prefix -> 'blocks' | 'all'
const tables = new Map(); // prefix -> the table its charts draw now
export const viewOf = (prefix) => views.get(prefix) ?? VIEWS.default;

const netOf = (table) => ({ id: table.id, name: table.name });

async function drawChart(prefix, key, table, height) {
  tables.set(prefix, table);
  const id = `${prefix}-${key}`;
  const el = key === 'boxes'
    ? await drawBoxesInto(id, table)
    : await drawInto(id, withHeight(FIGURES[key](table, { view: viewOf(prefix), width: widthOf(id) }), height));
  if (el) {
    setExport(el, netOf(table));
    describeChart(el, key === 'boxes' ? table : null);
  }
  return el;
}

// The compare page draws its pairs lower than a net page's charts (its own height); a phone's
// stacked volume chart keeps its own.
function withHeight(figure, height) {
  if (!height || figure.layout.grid?.rows === 2) return figure;
  return { ...figure, layout: { ...figure.layout, height } };
}

// key -> () => Promise of the drawn element (null where the page has no such chart).
export function netChartDrawers(prefix, table, height) {
  return Object.fromEntries(NET_CHARTS.map((key) => [key, () => drawChart(prefix, key, table, height)]));
}

export async function drawNetCharts(prefix, table, height) {
  const drawers = netChartDrawers(prefix, table, height);
  for (const key of NET_CHARTS) {
    await drawers[key]();
    await afterPaint();
  }
}

export const chartIds = (prefix) => NET_CHARTS.map((key) => `${prefix}-${key}`);
export const keysOf = (prefix, ids) => ids.map((id) => id.slice(prefix.length + 1));

// Redraws some of a prefix's charts from the table they draw now.
export async function redrawCharts(prefix, keys, height) {
  const table = tables.get(prefix);
  if (!table) return;
  for (const key of keys) await drawChart(prefix, key, table, height);
}

// A net page's (or the editor's) charts follow the toggle and the width.
export function wireNetCharts(prefix) {
  const toggle = document.querySelector(`[data-view-for="${prefix}"]`);
  if (toggle) enableViewToggle(toggle, () => redrawCharts(prefix, VIEWED));
  redrawOnLayoutChange(chartIds(prefix), (ids) => redrawCharts(prefix, keysOf(prefix, ids)));
}

// The "blocks / every layer" buttons of one chart group: pressing one sets the view of each
// prefix it names (data-view-for="a b" on the compare page) and calls redraw(view).
export function enableViewToggle(group, redraw) {
  const buttons = [...group.querySelectorAll('button[data-chart-view]')];
  group.hidden = false;
  for (const button of buttons) {
    button.addEventListener('click', async () => {
      const view = button.dataset.chartView;
      if (button.getAttribute('aria-pressed') === 'true') return;
      for (const other of buttons) other.setAttribute('aria-pressed', String(other === button));
      for (const prefix of group.dataset.viewFor.split(' ')) views.set(prefix, view);
      delete group.dataset.drawn;
      await redraw(view);
      group.dataset.drawn = view; // the charts show this view now
    });
  }
}

// Two nets aligned stage by stage on one pair of charts (#<prefix>-sides and -depth): the
// compare page's overlay and the what-if's. net names the PNGs.
export async function drawOverlay(prefix, comparison, net) {
  const width = document.getElementById(`${prefix}-sides`)?.clientWidth;
  for (const [key, figure] of Object.entries(overlayFigures(comparison, { width }))) {
    const el = await drawInto(`${prefix}-${key}`, figure);
    if (el) {
      setExport(el, net);
      describeChart(el);
    }
    await afterPaint();
  }
}
