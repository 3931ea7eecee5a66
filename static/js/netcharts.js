// The four per-layer charts of one net, drawn into #<prefix>-volume, -cost, -share, -boxes, -rf.
// One chart per task, in page order: the first is drawn and painted before the second starts,
// so it shows as soon as it can and the page stays responsive while the others follow.

import { costFigure, rfFigure, shareFigure, volumeFigure } from './charts.js';
import { afterPaint, drawBoxesInto, drawInto } from './page.js';

export const NET_CHARTS = ['volume', 'cost', 'share', 'boxes', 'rf'];

// key -> () => Promise of the drawn element (null where the page has no such chart).
export function netChartDrawers(prefix, table, height) {
  return {
    volume: () => drawInto(`${prefix}-volume`, volumeFigure(table, height)),
    cost: () => drawInto(`${prefix}-cost`, costFigure(table, height)),
    share: () => drawInto(`${prefix}-share`, shareFigure(table, height)),
    boxes: () => drawBoxesInto(`${prefix}-boxes`, table),
    rf: () => drawInto(`${prefix}-rf`, rfFigure(table, height)),
  };
}

export async function drawNetCharts(prefix, table, height) {
  const drawers = netChartDrawers(prefix, table, height);
  for (const key of NET_CHARTS) {
    await drawers[key]();
    await afterPaint();
  }
}

export const chartIds = (prefix) => NET_CHARTS.map((key) => `${prefix}-${key}`);
