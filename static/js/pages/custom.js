// The custom editor: every edit is checked as you type. Each layer is one line of JSON; the
// check names the layer of each problem, so its message shows under that line. A valid spec
// redraws the table (rendered by the server from the same template as the net pages) and the
// charts, and the URL's ?spec= always holds the spec, so the link shares exactly this net.
// Checks go to /api/analyze/check, which answers an invalid spec with 200 and its problems:
// a half-typed spec is normal here, not a failed request for the browser's console.

import { post } from '../api.js';
import { EDITOR } from '../config.js';
import { saveBlob } from '../downloads.js';
import { chartIds, drawNetCharts } from '../netcharts.js';
import { fail, start } from '../page.js';
import { enhanceTables } from '../table.js';

const editor = document.getElementById('editor');
const list = document.getElementById('layer-list');
const template = document.getElementById('layer-template');
const generalIssues = document.getElementById('general-issues');
const status = document.getElementById('editor-status');
const results = document.getElementById('results');
const charts = document.getElementById('custom-charts');
const nameInput = document.getElementById('spec-name');
const inputFields = {
  height: document.getElementById('input-height'),
  width: document.getElementById('input-width'),
  channels: document.getElementById('input-channels'),
};

let generation = 0;
let timer = null;
let lastValid = null;
// The spec whose table the server rendered into the page, so the first check reuses it.
let rendered = null;

// --- reading the form --------------------------------------------------------------------

function number(field) {
  const text = field.value.trim();
  return /^\d+$/.test(text) ? Number(text) : text; // anything else goes to the API as typed
}

function readLayers() {
  const layers = [];
  const jsonErrors = new Map();
  list.querySelectorAll('.layer-json').forEach((field, index) => {
    try {
      layers.push(JSON.parse(field.value));
    } catch (error) {
      jsonErrors.set(index, `not valid JSON: ${error.message}`);
      layers.push(null);
    }
  });
  return { layers, jsonErrors };
}

function readSpec() {
  const { layers, jsonErrors } = readLayers();
  const input = Object.fromEntries(Object.entries(inputFields).map(([k, f]) => [k, number(f)]));
  return { spec: { name: nameInput.value, input, layers }, jsonErrors };
}

// --- the URL -----------------------------------------------------------------------------

function encodeSpec(spec) {
  const bytes = new TextEncoder().encode(JSON.stringify(spec));
  let binary = '';
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function keepInUrl(spec) {
  const url = new URL(window.location.href);
  url.search = new URLSearchParams({ spec: encodeSpec(spec) }).toString();
  history.replaceState(history.state, '', url);
  document.querySelector('[data-practice-link]')?.setAttribute('href', `/practice${url.search}`);
}

// --- showing problems --------------------------------------------------------------------

function rows() {
  return [...list.querySelectorAll('li.layer-edit')];
}

function issueText(issue) {
  return issue.field ? `${issue.field}: ${issue.message}` : issue.message;
}

function showIssues(byLayer, general) {
  rows().forEach((row, index) => {
    const messages = byLayer.get(index) ?? [];
    row.classList.toggle('invalid', messages.length > 0);
    const field = row.querySelector('.layer-json');
    if (messages.length) field.setAttribute('aria-invalid', 'true');
    else field.removeAttribute('aria-invalid');
    row.querySelector('.issue').textContent = messages.join('; ');
  });
  generalIssues.replaceChildren(
    ...general.map((text) => Object.assign(document.createElement('li'), { textContent: text })),
  );
}

function showOutputs(table) {
  rows().forEach((row, index) => {
    const out = table?.layers[index]?.output;
    row.querySelector('.out').textContent = out ? `→ ${out.width}×${out.height}×${out.channels}` : '';
  });
}

// The editor's data-state (valid, invalid, error) and data-checks (checks finished) let a
// reader, or a test, see that a check has come back.
function setStatus(text, state) {
  status.textContent = text;
  status.classList.toggle('bad', state !== 'valid');
  editor.dataset.state = state;
  editor.dataset.checks = String(Number(editor.dataset.checks ?? 0) + 1);
}

function setStale(stale) {
  for (const part of [results, charts, editor]) part.classList.toggle('stale', stale);
}

// --- checking and redrawing --------------------------------------------------------------

async function showTable(spec, table) {
  if (rendered === null || JSON.stringify(spec) !== rendered) {
    const fragment = await post(editor.dataset.fragmentUrl, spec, 'text/html');
    results.innerHTML = await fragment.text(); // server-rendered, autoescaped HTML
    enhanceTables(results);
  }
  rendered = null;
  await drawNetCharts('custom', table);
}

function groupIssues(issues) {
  const byLayer = new Map();
  const general = [];
  for (const issue of issues) {
    if (issue.index === null || issue.index === undefined) general.push(issueText(issue));
    else byLayer.set(issue.index, [...(byLayer.get(issue.index) ?? []), issueText(issue)]);
  }
  return { byLayer, general };
}

async function check() {
  const mine = ++generation;
  const { spec, jsonErrors } = readSpec();
  if (jsonErrors.size) {
    const byLayer = new Map([...jsonErrors].map(([i, text]) => [i, [text]]));
    showIssues(byLayer, []);
    setStale(true);
    setStatus(`${jsonErrors.size} layer${jsonErrors.size === 1 ? ' is' : 's are'} not valid JSON.`, 'invalid');
    return;
  }
  keepInUrl(spec);
  try {
    const check = await post(editor.dataset.checkUrl, spec);
    if (mine !== generation) return;
    const { byLayer, general } = groupIssues(check.issues);
    showIssues(byLayer, general);
    if (!check.valid) {
      setStale(true);
      const count = check.issues.length;
      const problems = `${count} problem${count === 1 ? '' : 's'}`;
      setStatus(`${problems}; the table and the charts still show the last valid spec.`, 'invalid');
      return;
    }
    showOutputs(check.table);
    await showTable(spec, check.table);
    if (mine !== generation) return;
    lastValid = spec;
    setStale(false);
    const layers = check.table.layers.length;
    setStatus(`Valid: ${layers} layers. The table and the charts show this spec.`, 'valid');
  } catch (error) {
    if (mine === generation) setStatus(`Could not check the spec: ${error.message}`, 'error');
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(check, EDITOR.debounceMs);
}

// --- editing the list --------------------------------------------------------------------

function renumber() {
  rows().forEach((row, index) => {
    row.dataset.index = String(index);
    row.querySelector('.idx').textContent = String(index);
    const field = row.querySelector('.layer-json');
    field.setAttribute('aria-label', `Layer ${index} as JSON`);
    field.setAttribute('aria-describedby', `issue-${index}`);
    row.querySelector('.issue').id = `issue-${index}`;
    row.querySelector('[data-move="-1"]').setAttribute('aria-label', `Move layer ${index} up`);
    row.querySelector('[data-move="1"]').setAttribute('aria-label', `Move layer ${index} down`);
    row.querySelector('[data-remove]').setAttribute('aria-label', `Remove layer ${index}`);
  });
}

function addLayer() {
  const row = template.content.firstElementChild.cloneNode(true);
  row.querySelector('.layer-json').value = EDITOR.newLayer;
  list.append(row);
  renumber();
  row.querySelector('.layer-json').focus();
  schedule();
}

function onListClick(event) {
  const button = event.target.closest('button');
  if (!button) return;
  const row = button.closest('li.layer-edit');
  if (button.hasAttribute('data-remove')) {
    const next = row.nextElementSibling ?? row.previousElementSibling;
    row.remove();
    next?.querySelector('.layer-json')?.focus();
  } else if (button.dataset.move === '-1' && row.previousElementSibling) {
    row.previousElementSibling.before(row);
    button.focus();
  } else if (button.dataset.move === '1' && row.nextElementSibling) {
    row.nextElementSibling.after(row);
    button.focus();
  } else {
    return;
  }
  renumber();
  schedule();
}

// --- downloads ---------------------------------------------------------------------------

function filename(extension) {
  const slug = nameInput.value.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${slug || 'custom-net'}.${extension}`;
}

function downloadJson() {
  const { spec } = readSpec();
  saveBlob(new Blob([`${JSON.stringify(spec, null, 2)}\n`], { type: 'application/json' }), filename('json'));
}

async function downloadCsv() {
  if (!lastValid) {
    status.textContent = 'Fix the spec first: only a valid spec has a table.';
    return;
  }
  const blob = await post(`${editor.dataset.analyzeUrl}?format=csv`, lastValid, 'text/csv');
  saveBlob(blob, filename('csv'));
}

async function copyLink() {
  try {
    await navigator.clipboard.writeText(window.location.href);
    status.textContent = 'Link copied: it holds the whole spec.';
  } catch {
    status.textContent = 'Copy the address bar: the link holds the whole spec.';
  }
}

// --- start -------------------------------------------------------------------------------

start();
if (results.querySelector('table')) rendered = JSON.stringify(readSpec().spec);
document.querySelector('.editor-tools').hidden = false;
editor.addEventListener('input', schedule);
list.addEventListener('click', onListClick);
document.getElementById('add-layer').addEventListener('click', addLayer);
document.getElementById('download-json').addEventListener('click', downloadJson);
document.getElementById('download-csv').addEventListener('click', downloadCsv);
document.getElementById('copy-link').addEventListener('click', copyLink);
try {
  await check();
} catch (error) {
  fail(chartIds('custom'), error);
}
