import { getJSON } from '../api.js';
import { overlayFigures, shareRanges } from '../charts.js';
import { CHART } from '../config.js';
import { chartIds, drawNetCharts } from '../netcharts.js';
import { drawInto, fail, start } from '../page.js';
import { startPredict } from '../predict.js';

// Value axes the two nets' side-by-side charts share (the boxes share both, so one scale).
const SHARED = {
  volume: ['yaxis', 'yaxis2'],
  cost: ['yaxis'],
  boxes: ['xaxis', 'yaxis'],
  rf: ['yaxis'],
};

start();
startPredict();
const source = document.querySelector('[data-compare-url]');
const ids = [...chartIds('a'), ...chartIds('b'), 'overlay-sides', 'overlay-depth'];
try {
  const [comparison, tableA, tableB] = await Promise.all([
    getJSON(source.dataset.compareUrl),
    getJSON(source.dataset.tableA),
    getJSON(source.dataset.tableB),
  ]);
  const overlay = overlayFigures(comparison);
  await Promise.all([
    drawInto('overlay-sides', overlay.sides),
    drawInto('overlay-depth', overlay.depth),
    drawNetCharts('a', tableA, CHART.pairHeight),
    drawNetCharts('b', tableB, CHART.pairHeight),
  ]);
  await Promise.all(
    Object.entries(SHARED).map(([key, axes]) =>
      shareRanges([document.getElementById(`a-${key}`), document.getElementById(`b-${key}`)], axes),
    ),
  );
} catch (error) {
  fail(ids, error);
}
