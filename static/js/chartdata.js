// Every chart's text alternative: the numbers it draws, as a table under it (closed until asked
// for), written from the very traces Plotly drew, so it always says what the chart shows, in
// the view it shows (blocks or every layer).

import { boxLayout } from './boxes.js';
import { exactCount } from './format.js';

const volumeText = (v) => `${v.width}×${v.height}×${v.channels}`;

function cellText(value) {
  if (value === null || value === undefined) return '—';
  return Number.isInteger(value) ? exactCount(value) : String(value);
}

// Columns: the category, then one per trace; rows: the categories in the order first drawn.
function traceRows(traces) {
  const horizontal = traces[0]?.orientation === 'h';
  const categories = [];
  const columns = traces.map((trace) => {
    const keys = horizontal ? trace.y : trace.x;
    const values = horizontal ? trace.x : trace.y;
    const byKey = new Map();
    (keys ?? []).forEach((key, i) => {
      if (!categories.includes(key)) categories.push(key);
      byKey.set(key, values[i]);
    });
    return byKey;
  });
  const head = ['', ...traces.map((trace) => trace.name ?? '')];
  return { head, rows: categories.map((key) => [key, ...columns.map((column) => cellText(column.get(key)))]) };
}

function boxRows(table) {
  const head = ['box', 'W×H×D', 'layers'];
  return { head, rows: boxLayout(table).map((box) => [box.label, volumeText(box.volume), box.names.join(', ')]) };
}

function tableOf({ head, rows }, caption) {
  const table = document.createElement('table');
  table.className = 'chart-numbers';
  table.createCaption().textContent = caption;
  const headRow = table.createTHead().insertRow();
  for (const text of head) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = text;
    headRow.append(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    row.forEach((text, i) => {
      const cell = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) cell.scope = 'row';
      else cell.className = 'num';
      cell.textContent = text;
      tr.append(cell);
    });
  }
  return table;
}

// Fills #<el.id>-data, where the page has one; `table` is the net's table for the boxes.
export function describeChart(el, table = null) {
  const holder = document.getElementById(`${el.id}-data`);
  if (!holder) return;
  const numbers = el.dataset.chart === 'boxes' && table ? boxRows(table) : traceRows(el.data ?? []);
  const caption = el.getAttribute('aria-label') ?? '';
  holder.querySelector('.chart-numbers-wrap').replaceChildren(tableOf(numbers, caption));
  holder.hidden = false;
}
