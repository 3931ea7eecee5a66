// The four per-layer charts of one net, drawn into #<prefix>-volume, -cost, -share, -boxes, -rf.

import { costFigure, rfFigure, shareFigure, volumeFigure } from './charts.js';
import { drawBoxesInto, drawInto } from './page.js';

export const NET_CHARTS = ['volume', 'cost', 'share', 'boxes', 'rf'];

export function drawNetCharts(prefix, table, height) {
  return Promise.all([
    drawInto(`${prefix}-volume`, volumeFigure(table, height)),
    drawInto(`${prefix}-cost`, costFigure(table, height)),
    drawInto(`${prefix}-share`, shareFigure(table, height)),
    drawBoxesInto(`${prefix}-boxes`, table),
    drawInto(`${prefix}-rf`, rfFigure(table, height)),
  ]);
}

export const chartIds = (prefix) => NET_CHARTS.map((key) => `${prefix}-${key}`);
