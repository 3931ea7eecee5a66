import { embeddedJSON } from '../api.js';
import { refitLabels } from '../boxes.js';
import { redrawOnLayoutChange, shareRanges } from '../charts.js';
import { CHART } from '../config.js';
import { NET_CHARTS, VIEWED, chartIds, drawOverlay, enableViewToggle, keysOf, netChartDrawers, redrawCharts } from '../netcharts.js';
import { afterPaint, fail, start } from '../page.js';
import { startPredict } from '../predict.js';

// Value axes the two nets' side-by-side charts share (the boxes share both, so one scale).
const SHARED = {
  volume: ['yaxis', 'yaxis2'],
  cost: ['yaxis'],
  boxes: ['xaxis', 'yaxis'],
  rf: ['yaxis'],
};

const comparison = embeddedJSON('compare-data');
const pair = { id: `${comparison.a.id}-vs-${comparison.b.id}`, name: `${comparison.a.name} vs ${comparison.b.name}` };

const drawPairOverlay = () => drawOverlay('overlay', comparison, pair);

async function share(key) {
  if (!SHARED[key]) return;
  const pair = [document.getElementById(`a-${key}`), document.getElementById(`b-${key}`)];
  await shareRanges(pair, SHARED[key]);
  if (key === 'boxes') await refitLabels(pair);
}

async function redrawPairs(keys) {
  for (const key of keys) {
    await Promise.all([redrawCharts('a', [key], CHART.pairHeight), redrawCharts('b', [key], CHART.pairHeight)]);
    await share(key);
  }
}

start();
startPredict();
const ids = ['overlay-sides', 'overlay-depth', ...chartIds('a'), ...chartIds('b')];
try {
  // The overlay comes first on the page, so it is drawn first; then the pairs, one per task.
  await drawPairOverlay();
  const a = netChartDrawers('a', embeddedJSON('table-a-data'), CHART.pairHeight);
  const b = netChartDrawers('b', embeddedJSON('table-b-data'), CHART.pairHeight);
  for (const key of NET_CHARTS) {
    await Promise.all([a[key](), b[key]()]);
    await share(key);
    await afterPaint();
  }
  const toggle = document.querySelector('[data-view-for="a b"]');
  if (toggle) enableViewToggle(toggle, () => redrawPairs(VIEWED));
  redrawOnLayoutChange(['overlay-sides'], drawPairOverlay);
  redrawOnLayoutChange(chartIds('a'), (changed) => redrawPairs(keysOf('a', changed)));
} catch (error) {
  fail(ids, error);
}
