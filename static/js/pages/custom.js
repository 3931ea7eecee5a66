// The custom editor. One spec, two views of it: a form (a row per layer with the fields of its
// kind) and the whole spec as JSON. Every edit is checked as you type by /api/analyze/check,
// which answers an invalid spec with 200 and its problems in plain words: each shows at the
// field it is about. Outputs show for the layers before the first invalid one and are cleared
// after it. A valid spec redraws the table (rendered by the server from the same template as
// the net pages) and the charts, and the URL's ?spec= always holds the spec.

import { embeddedJSON, post } from '../api.js';
import { EDITOR } from '../config.js';
import { saveBlob } from '../downloads.js';
import { chartIds, drawNetCharts, wireNetCharts } from '../netcharts.js';
import { fail, start } from '../page.js';
import { changeKind, isLayerObject, layerRow, newLayer, parseField, readRow, renumber } from '../specform.js';
import { enhanceTables } from '../table.js';

const editor = document.getElementById('editor');
const list = document.getElementById('layer-list');
const generalIssues = document.getElementById('general-issues');
const status = document.getElementById('editor-status');
const results = document.getElementById('results');
const charts = document.getElementById('custom-charts');
const nameInput = document.getElementById('spec-name');
const jsonText = document.getElementById('spec-json');
const jsonIssue = document.getElementById('spec-json-issue');
const newKind = document.getElementById('new-kind');
const inputFields = [...document.querySelectorAll('[data-input]')];
const views = { form: document.getElementById('form-view'), json: document.getElementById('json-view') };
const kinds = new Map(embeddedJSON('layer-kinds-data').map((entry) => [entry.kind, entry]));

let spec = embeddedJSON('editor-spec-data');
let view = 'form';
let generation = 0;
let timer = null;
let lastValid = null;
let lastCheck = null; // the last answer of the check, shown again when the form is rebuilt
// The spec whose table the server rendered into the page, so the first check reuses it.
let rendered = results.querySelector('table') ? JSON.stringify(spec) : null;

// --- the form view -----------------------------------------------------------------------

const rows = () => [...list.querySelectorAll('li.layer-edit')];
const layers = () => (Array.isArray(spec.layers) ? spec.layers : []);

function buildForm() {
  nameInput.value = typeof spec.name === 'string' ? spec.name : '';
  const input = isLayerObject(spec.input) ? spec.input : {};
  for (const field of inputFields) {
    const value = input[field.dataset.input];
    field.value = value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  }
  list.replaceChildren(...layers().map((layer) => layerRow(layer, kinds)));
  renumber(rows());
}

function readInput() {
  const input = {};
  const before = isLayerObject(spec.input) ? spec.input : {};
  // The spec's own key order first (height, width, channels), so the link stays the same.
  const order = [...Object.keys(before), ...inputFields.map((f) => f.dataset.input)];
  for (const key of new Set(order)) {
    const field = inputFields.find((f) => f.dataset.input === key);
    const value = field ? parseField(field.value) : before[key];
    if (value !== undefined) input[key] = value;
  }
  return input;
}

function readForm(changedRow) {
  const next = { ...spec, name: nameInput.value, input: readInput() };
  if (changedRow) {
    const index = rows().indexOf(changedRow);
    next.layers = layers().map((layer, i) => (i === index ? readRow(changedRow, layer) : layer));
  }
  spec = next;
}

// --- the JSON view -----------------------------------------------------------------------

function showJson() {
  jsonText.value = `${JSON.stringify(spec, null, 2)}\n`;
  jsonIssue.textContent = '';
  jsonText.removeAttribute('aria-invalid');
}

// Valid JSON becomes the spec (the check then says what is wrong with it); text that is not
// JSON stays in the box with the parser's reason, and the spec keeps its last readable state.
function readJson() {
  try {
    spec = JSON.parse(jsonText.value);
  } catch (error) {
    jsonIssue.textContent = `Not valid JSON yet: ${error.message}`;
    jsonText.setAttribute('aria-invalid', 'true');
    return false;
  }
  jsonIssue.textContent = '';
  jsonText.removeAttribute('aria-invalid');
  return true;
}

function switchView(next) {
  if (next === view) return;
  if (view === 'json' && !readJson()) {
    jsonText.focus();
    setStatus('Fix the JSON first: the form shows only a spec that parses.', 'invalid', false);
    return;
  }
  view = next;
  if (view === 'json') showJson();
  else buildForm();
  if (lastCheck?.spec === JSON.stringify(spec)) showCheck(lastCheck.result); // never stale
  for (const [name, part] of Object.entries(views)) part.hidden = name !== view;
  for (const button of document.querySelectorAll('[data-view]')) {
    button.setAttribute('aria-pressed', String(button.dataset.view === view));
  }
  schedule();
}

// --- the URL -----------------------------------------------------------------------------

function encodeSpec(value) {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  let binary = '';
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function keepInUrl(value) {
  const url = new URL(window.location.href);
  url.search = new URLSearchParams({ spec: encodeSpec(value) }).toString();
  history.replaceState(history.state, '', url);
  document.querySelector('[data-practice-link]')?.setAttribute('href', `/practice${url.search}`);
}

// --- showing problems and outputs --------------------------------------------------------

const issueText = (issue) => (issue.field ? `${issue.field}: ${issue.message}` : issue.message);
// Away from its row (the JSON view), an issue says which layer it is about.
const layerText = (issue) => `layer ${issue.index}${issue.name ? ` (${issue.name})` : ''}, ${issueText(issue)}`;

function clearIssues() {
  for (const el of editor.querySelectorAll('.field-issue')) el.textContent = '';
  for (const el of editor.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of editor.querySelectorAll('.field.invalid, .extra-key.invalid')) el.classList.remove('invalid');
  for (const row of rows()) {
    row.classList.remove('invalid');
    row.querySelector('.issue').textContent = '';
  }
  generalIssues.replaceChildren();
}

// An issue goes to the control it names: a layer's field, the layer's name or kind, an input
// side or the spec's name; what has no control of its own goes under the layer, or above it.
function placeAt(box, message) {
  if (!box) return false;
  box.classList.add('invalid');
  const issue = box.querySelector('.field-issue');
  const control = box.querySelector('input, select');
  if (issue) issue.textContent = issue.textContent ? `${issue.textContent}; ${message}` : message;
  control?.setAttribute('aria-invalid', 'true');
  return Boolean(issue);
}

function showLayerIssue(issue) {
  const row = rows()[issue.index];
  if (!row) return false;
  row.classList.add('invalid');
  const box = issue.field ? row.querySelector(`.field[data-field="${CSS.escape(issue.field)}"]`) : null;
  if (placeAt(box, issue.message)) return true;
  const extra = issue.field ? row.querySelector(`.extra-key[data-field="${CSS.escape(issue.field)}"]`) : null;
  extra?.classList.add('invalid');
  const text = row.querySelector('.issue');
  text.textContent = [text.textContent, issueText(issue)].filter(Boolean).join('; ');
  return true;
}

function showGeneralIssue(issue) {
  if (issue.index !== null && issue.index !== undefined) {
    generalIssues.append(Object.assign(document.createElement('li'), { textContent: layerText(issue) }));
    return;
  }
  const input = issue.field?.match(/^input\.(\w+)$/)?.[1];
  const box = input
    ? document.getElementById(`input-${input}`)?.closest('.field')
    : issue.field === 'name' ? nameInput.closest('.field') : null;
  if (placeAt(box, issue.message)) return;
  generalIssues.append(Object.assign(document.createElement('li'), { textContent: issueText(issue) }));
}

function showIssues(issues) {
  clearIssues();
  for (const issue of issues) {
    const atLayer = issue.index !== null && issue.index !== undefined && view === 'form';
    if (!(atLayer && showLayerIssue(issue))) showGeneralIssue(issue);
  }
}

// Outputs of the layers the table covers; every row after it is cleared, never left stale.
function showOutputs(table) {
  const computed = table?.layers ?? [];
  rows().forEach((row, index) => {
    const layer = computed[index];
    const out = row.querySelector('.out');
    out.textContent = layer ? `→ ${layer.output.width}×${layer.output.height}×${layer.output.channels}` : '';
    out.classList.toggle('cleared', !layer);
    if (layer) row.querySelector('.layer-name').placeholder = layer.name;
  });
}

// The editor's data-state (valid, invalid, error) and data-checks (checks finished) let a
// reader, or a test, see that a check has come back.
function setStatus(text, state, counted = true) {
  status.textContent = text;
  status.classList.toggle('bad', state !== 'valid');
  editor.dataset.state = state;
  if (counted) editor.dataset.checks = String(Number(editor.dataset.checks ?? 0) + 1);
}

function setStale(stale) {
  for (const part of [results, charts]) part.classList.toggle('stale', stale);
}

// --- checking and redrawing --------------------------------------------------------------

async function showTable(value, table) {
  if (rendered === null || JSON.stringify(value) !== rendered) {
    const fragment = await post(editor.dataset.fragmentUrl, value, 'text/html');
    results.innerHTML = await fragment.text(); // server-rendered, autoescaped HTML
    enhanceTables(results);
  }
  rendered = null;
  await drawNetCharts('custom', table);
}

function showCheck(result) {
  showIssues(result.issues);
  showOutputs(result.valid ? result.table : result.valid_before);
}

function invalidStatus(check) {
  const count = check.issues.length;
  const problems = `${count} problem${count === 1 ? '' : 's'}`;
  const first = Math.min(...check.issues.map((issue) => issue.index ?? Infinity));
  const where = Number.isFinite(first) ? ` (the first at layer ${first}; outputs after it are cleared)` : '';
  return `${problems}${where}. The table and the charts still show the last valid spec.`;
}

async function check() {
  const mine = ++generation;
  if (view === 'json' && !readJson()) {
    setStale(true);
    setStatus('The JSON does not parse yet; the table and the charts show the last valid spec.', 'invalid');
    return;
  }
  const value = spec;
  keepInUrl(value);
  try {
    const result = await post(editor.dataset.checkUrl, value);
    if (mine !== generation) return;
    lastCheck = { spec: JSON.stringify(value), result };
    showCheck(result);
    if (!result.valid) {
      setStale(true);
      setStatus(invalidStatus(result), 'invalid');
      return;
    }
    await showTable(value, result.table);
    if (mine !== generation) return;
    lastValid = value;
    setStale(false);
    setStatus(`Valid: ${result.table.layers.length} layers. The table and the charts show this spec.`, 'valid');
  } catch (error) {
    if (mine === generation) setStatus(`Could not check the spec: ${error.message}`, 'error');
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(check, EDITOR.debounceMs);
}

// --- editing -----------------------------------------------------------------------------

function onFormInput(event) {
  const row = event.target.closest('li.layer-edit');
  if (event.target === newKind) return; // the kind of the next layer to add: nothing changed yet
  if (row && event.target.classList.contains('kind-select')) {
    replaceLayer(row, changeKind(layers()[rows().indexOf(row)], event.target.value, kinds), '.kind-select');
    return;
  }
  readForm(row);
  schedule();
}

function setLayers(next) {
  spec = { ...spec, layers: next };
}

// Rebuilds one row (a new kind has other fields) and puts the focus back where it was.
function replaceLayer(row, layer, focus) {
  const index = rows().indexOf(row);
  setLayers(layers().map((old, i) => (i === index ? layer : old)));
  const fresh = layerRow(layer, kinds);
  row.replaceWith(fresh);
  renumber(rows());
  fresh.querySelector(focus)?.focus();
  schedule();
}

function onListClick(event) {
  const button = event.target.closest('button[data-action], button[data-key]');
  if (!button) return;
  const row = button.closest('li.layer-edit');
  const index = rows().indexOf(row);
  const all = layers();
  const action = button.dataset.action;
  if (action === 'drop-key') {
    const { [button.dataset.key]: _dropped, ...rest } = all[index];
    replaceLayer(row, rest, '.kind-select');
    return;
  }
  const moves = { up: -1, down: 1 };
  if (action in moves) {
    const target = index + moves[action];
    if (target < 0 || target >= all.length) return;
    const next = [...all];
    [next[index], next[target]] = [next[target], next[index]];
    setLayers(next);
    if (moves[action] < 0) row.previousElementSibling.before(row);
    else row.nextElementSibling.after(row);
    button.focus();
  } else if (action === 'copy') {
    const copy = structuredClone(all[index]);
    if (isLayerObject(copy) && typeof copy.name === 'string') copy.name = unusedName(`${copy.name}-copy`, all);
    setLayers([...all.slice(0, index + 1), copy, ...all.slice(index + 1)]);
    const fresh = layerRow(copy, kinds);
    row.after(fresh);
    renumber(rows());
    fresh.querySelector('.kind-select').focus();
  } else if (action === 'remove') {
    setLayers(all.filter((_, i) => i !== index));
    const next = row.nextElementSibling ?? row.previousElementSibling;
    row.remove();
    (next?.querySelector('.kind-select') ?? document.getElementById('add-layer')).focus();
  }
  renumber(rows());
  schedule();
}

// Names must differ: a copy of "conv1" is "conv1-copy", then "conv1-copy2"...
function unusedName(base, all) {
  const taken = new Set(all.filter(isLayerObject).map((layer) => layer.name));
  let name = base;
  for (let n = 2; taken.has(name); n += 1) name = `${base}${n}`;
  return name;
}

function addLayer() {
  const layer = newLayer(newKind.value);
  setLayers([...layers(), layer]);
  const row = layerRow(layer, kinds);
  list.append(row);
  renumber(rows());
  row.querySelector('.layer-fields input, .kind-select').focus();
  schedule();
}

// --- downloads ---------------------------------------------------------------------------

function filename(extension) {
  const name = typeof spec.name === 'string' ? spec.name : '';
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${slug || 'custom-net'}.${extension}`;
}

function downloadJson() {
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
newKind.replaceChildren(...[...kinds.keys()].map((kind) => Object.assign(document.createElement('option'), { value: kind, textContent: kind })));
newKind.value = EDITOR.newLayerKind;
buildForm();
for (const part of document.querySelectorAll('.editor-tools, .view-switch')) part.hidden = false;
views.form.addEventListener('input', onFormInput);
jsonText.addEventListener('input', schedule);
list.addEventListener('click', onListClick);
for (const button of document.querySelectorAll('[data-view]')) {
  button.addEventListener('click', () => switchView(button.dataset.view));
}
document.getElementById('add-layer').addEventListener('click', addLayer);
document.getElementById('download-json').addEventListener('click', downloadJson);
document.getElementById('download-csv').addEventListener('click', downloadCsv);
document.getElementById('copy-link').addEventListener('click', copyLink);
wireNetCharts('custom');
try {
  await check();
} catch (error) {
  fail(chartIds('custom'), error);
}
