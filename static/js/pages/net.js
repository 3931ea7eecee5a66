import { getJSON } from '../api.js';
import { chartIds, drawNetCharts } from '../netcharts.js';
import { fail, start } from '../page.js';
import { startPredict } from '../predict.js';

start();
startPredict();
const source = document.querySelector('[data-table-url]');
try {
  await drawNetCharts('net', await getJSON(source.dataset.tableUrl));
} catch (error) {
  fail(chartIds('net'), error);
}
