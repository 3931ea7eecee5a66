import { embeddedJSON } from '../api.js';
import { redrawOnLayoutChange, setExport, timelineFigure } from '../charts.js';
import { drawInto, fail, start } from '../page.js';

start();
const el = document.getElementById('timeline-chart');
const timeline = embeddedJSON('timeline-data');
const drawTimeline = () => drawInto(el.id, timelineFigure(timeline, { width: el.clientWidth }));
try {
  await drawTimeline();
  setExport(el, { id: 'ilsvrc', name: timeline.title }); // ilsvrc-timeline.png
  redrawOnLayoutChange([el.id], drawTimeline);
} catch (error) {
  fail([el.id], error);
}
