import { embeddedJSON } from '../api.js';
import { chartIds, drawNetCharts, wireNetCharts } from '../netcharts.js';
import { fail, start } from '../page.js';
import { startPredict } from '../predict.js';
import { drawWhatIf, wireWhatIf } from '../whatif.js';

start();
startPredict();
wireWhatIf();
try {
  await drawNetCharts('net', embeddedJSON('net-table-data'));
  wireNetCharts('net');
  await drawWhatIf();
} catch (error) {
  fail([...chartIds('net'), 'whatif-sides', 'whatif-depth'], error);
}
