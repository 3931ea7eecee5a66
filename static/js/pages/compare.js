import { embeddedJSON } from '../api.js';
import { refitLabels } from '../boxes.js';
import { setExport, shareRanges } from '../charts.js';
import { describeChart } from '../chartdata.js';
import { CHART } from '../config.js';
import { NET_CHARTS, VIEWED, chartIds, enableViewToggle, keysOf, netChartDrawers, redrawCharts, redrawOnLayoutChange } from '../netcharts.js';
import { overlayFigures } from '../netfigures.js';
import { afterPaint, drawInto, fail, start } from '../page.js';
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

async function drawOverlay() {
  const width = document.getElementById('overlay-sides')?.clientWidth;
  const overlay = overlayFigures(comparison, { width });
  for (const [key, figure] of Object.entries(overlay)) {
    const el = await drawInto(`overlay-${key}`, figure);
    if (el) {
      setExport(el, pair);
      describeChart(el);
    }
    await afterPaint();
  }
}

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
  await drawOverlay();
  const a = netChartDrawers('a', embeddedJSON('table-a-data'), CHART.pairHeight);
  const b = netChartDrawers('b', embeddedJSON('table-b-data'), CHART.pairHeight);
  for (const key of NET_CHARTS) {
    await Promise.all([a[key](), b[key]()]);
    await share(key);
    await afterPaint();
  }
  const toggle = document.querySelector('[data-view-for="a b"]');
  if (toggle) enableViewToggle(toggle, () => redrawPairs(VIEWED));
  redrawOnLayoutChange(['overlay-sides'], drawOverlay);
  redrawOnLayoutChange(chartIds('a'), (changed) => redrawPairs(keysOf('a', changed)));
} catch (error) {
  fail(ids, error);
}
