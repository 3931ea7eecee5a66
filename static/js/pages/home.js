import { embeddedJSON } from '../api.js';
import { timelineFigure } from '../charts.js';
import { drawInto, fail, start } from '../page.js';

start();
const el = document.getElementById('timeline-chart');
try {
  await drawInto(el.id, timelineFigure(embeddedJSON('timeline-data')));
} catch (error) {
  fail([el.id], error);
}
