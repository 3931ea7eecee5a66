import { embeddedJSON } from '../api.js';
import { overlayFigures, shareRanges } from '../charts.js';
import { CHART } from '../config.js';
import { NET_CHARTS, chartIds, netChartDrawers } from '../netcharts.js';
import { afterPaint, drawInto, fail, start } from '../page.js';
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
const ids = ['overlay-sides', 'overlay-depth', ...chartIds('a'), ...chartIds('b')];
try {
  // The overlay comes first on the page, so it is drawn first; then the pairs, one per task.
  const overlay = overlayFigures(embeddedJSON('compare-data'));
  await drawInto('overlay-sides', overlay.sides);
  await afterPaint();
  await drawInto('overlay-depth', overlay.depth);
  await afterPaint();
  const a = netChartDrawers('a', embeddedJSON('table-a-data'), CHART.pairHeight);
  const b = netChartDrawers('b', embeddedJSON('table-b-data'), CHART.pairHeight);
  for (const key of NET_CHARTS) {
    await Promise.all([a[key](), b[key]()]);
    if (SHARED[key]) {
      await shareRanges([document.getElementById(`a-${key}`), document.getElementById(`b-${key}`)], SHARED[key]);
    }
    await afterPaint();
  }
} catch (error) {
  fail(ids, error);
}
