import { embeddedJSON } from '../api.js';
import { chartIds, drawNetCharts, wireNetCharts } from '../netcharts.js';
import { fail, start } from '../page.js';
import { startPredict } from '../predict.js';

start();
startPredict();
try {
  await drawNetCharts('net', embeddedJSON('net-table-data'));
  wireNetCharts('net');
} catch (error) {
  fail(chartIds('net'), error);
}
