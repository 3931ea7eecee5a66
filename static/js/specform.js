// The custom editor's form: one row per layer, built from each kind's fields as the server
// describes them (app/specs/fields.py: type, bounds, default), so a new kind or field needs no
// change here. The form reads and writes plain spec objects; it never judges a value: what a
// field holds goes to the server's check as typed (a number where it reads as one), and the
// check's plain-words message comes back to that field.

import { EDITOR } from './config.js';

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
let nextUid = 0;

export const isLayerObject = (layer) => layer !== null && typeof layer === 'object' && !Array.isArray(layer);

// The JSON value a field's text stands for: nothing (the default) when empty, a number where
// the text reads as one (-5 included, for the check to say why it is wrong), else the text.
export function parseField(text) {
  const value = text.trim();
  if (value === '') return undefined;
  return NUMBER.test(value) ? Number(value) : value;
}

export function fieldText(value) {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function make(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

// Shown in an empty field: what it then means (the same brackets as the page's list of kinds).
function defaultText(field) {
  if (field.required) return 'required';
  if (field.default_from) return `(= ${field.default_from})`;
  return `(${fieldText(field.default)})`;
}

function boundsText(field) {
  const parts = [];
  if (field.minimum !== undefined) parts.push(`≥ ${field.minimum}`);
  if (field.exclusive_minimum !== undefined) parts.push(`> ${field.exclusive_minimum}`);
  if (field.maximum !== undefined) parts.push(`≤ ${field.maximum}`);
  return parts.join(', ');
}

function fieldBox(field, value, uid) {
  const id = `l${uid}-${field.name}`;
  const box = make('div', `field field-${field.type}`);
  box.dataset.field = field.name;
  const input = make('input', 'field-input');
  input.id = id;
  input.dataset.type = field.type;
  input.autocomplete = 'off';
  const issue = make('span', 'field-issue');
  issue.id = `${id}-issue`;
  input.setAttribute('aria-describedby', issue.id);
  const label = make('label', 'field-label', field.name);
  label.htmlFor = id;
  if (field.type === 'bool') {
    input.type = 'checkbox';
    input.dataset.default = String(field.default === true);
    input.checked = value === undefined ? field.default === true : value === true;
    box.append(input, label, issue);
    return box;
  }
  input.type = 'text';
  input.inputMode = field.type === 'int' ? 'numeric' : 'decimal';
  input.value = fieldText(value);
  input.placeholder = defaultText(field);
  const bounds = boundsText(field);
  if (bounds) input.title = `${field.type === 'int' ? 'a whole number' : 'a number'} ${bounds}`;
  box.append(label, input, issue);
  return box;
}

function iconButton(action, symbol) {
  const button = make('button', 'icon', symbol);
  button.type = 'button';
  button.dataset.action = action;
  return button;
}

function kindSelect(kinds, current) {
  const select = make('select', 'kind-select');
  if (!kinds.has(current)) {
    const option = make('option', '', current === undefined ? '(choose a kind)' : `${fieldText(current)} (unknown)`);
    option.value = '';
    select.append(option);
  }
  for (const kind of kinds.keys()) {
    const option = make('option', '', kind);
    option.value = kind;
    select.append(option);
  }
  select.value = kinds.has(current) ? current : '';
  return select;
}

// Keys the layer has that its kind does not take: shown, so the check's message has a place,
// and removable in one click.
function extraKeys(layer, known) {
  const list = make('ul', 'extra-keys');
  for (const [key, value] of Object.entries(layer)) {
    if (key === 'kind' || key === 'name' || known.has(key)) continue;
    const item = make('li', 'extra-key');
    item.dataset.field = key;
    item.append(make('code', '', `${key}: ${fieldText(value)}`));
    const remove = iconButton('drop-key', '✕');
    remove.dataset.key = key;
    remove.setAttribute('aria-label', `Remove the field ${key}`);
    item.append(remove);
    list.append(item);
  }
  return list;
}

// One layer's row. `layer` may be anything a JSON view held: a row still shows it.
export function layerRow(layer, kinds) {
  const uid = nextUid++;
  const row = make('li', 'layer-edit');
  row.dataset.uid = String(uid);
  const object = isLayerObject(layer) ? layer : {};
  const spec = kinds.get(object.kind);

  const head = make('div', 'layer-head');
  const name = make('input', 'layer-name');
  name.type = 'text';
  name.id = `l${uid}-name`;
  name.maxLength = 64;
  name.autocomplete = 'off';
  name.value = fieldText(object.name);
  const nameIssue = make('span', 'field-issue');
  nameIssue.id = `l${uid}-name-issue`;
  name.setAttribute('aria-describedby', nameIssue.id);
  const nameBox = make('div', 'field name-box');
  nameBox.dataset.field = 'name';
  const nameLabel = make('label', 'field-label', 'name');
  nameLabel.htmlFor = name.id;
  nameBox.append(nameLabel, name, nameIssue);
  const kindBox = make('div', 'field kind-box');
  kindBox.dataset.field = 'kind';
  const select = kindSelect(kinds, object.kind);
  select.id = `l${uid}-kind`;
  const kindIssue = make('span', 'field-issue');
  kindIssue.id = `l${uid}-kind-issue`;
  select.setAttribute('aria-describedby', kindIssue.id);
  kindBox.append(select, kindIssue);
  const tools = make('span', 'row-tools');
  tools.append(iconButton('up', '↑'), iconButton('down', '↓'), iconButton('copy', '+'), iconButton('remove', '✕'));
  head.append(make('span', 'idx'), kindBox, nameBox, make('output', 'out'), tools);

  const fields = make('div', 'layer-fields');
  fields.setAttribute('role', 'group');
  for (const field of spec?.fields ?? []) fields.append(fieldBox(field, object[field.name], uid));
  const known = new Set((spec?.fields ?? []).map((field) => field.name));
  const issue = make('p', 'issue');
  issue.id = `l${uid}-issue`;
  row.append(head, fields, extraKeys(object, known), issue);
  if (!isLayerObject(layer)) issue.dataset.raw = fieldText(layer);
  return row;
}

// Labels that say which layer each control belongs to, after any add, move or removal.
export function renumber(rows) {
  rows.forEach((row, index) => {
    row.dataset.index = String(index);
    row.querySelector('.idx').textContent = String(index);
    const what = `layer ${index}`;
    row.querySelector('.kind-select').setAttribute('aria-label', `Kind of ${what}`);
    row.querySelector('.layer-name').setAttribute('aria-label', `Name of ${what}`);
    row.querySelector('.layer-fields').setAttribute('aria-label', `Settings of ${what}`);
    row.querySelector('.out').setAttribute('aria-label', `Output volume of ${what}`);
    for (const input of row.querySelectorAll('.layer-fields .field-input')) {
      input.setAttribute('aria-label', `${input.closest('.field').dataset.field} of ${what}`);
    }
    const labels = { up: 'Move %s up', down: 'Move %s down', copy: 'Duplicate %s below', remove: 'Remove %s' };
    for (const button of row.querySelectorAll('.row-tools button')) {
      button.setAttribute('aria-label', labels[button.dataset.action].replace('%s', what));
      button.title = labels[button.dataset.action].replace('%s', what);
    }
  });
}

// The layer a row stands for now: its kind, its name and every field that holds something.
export function readRow(row, previous) {
  const kind = row.querySelector('.kind-select').value;
  if (!kind) return previous; // not an object, or an unknown kind: left as it was
  const layer = { kind };
  const name = row.querySelector('.layer-name').value;
  if (name !== '') layer.name = name;
  for (const input of row.querySelectorAll('.layer-fields .field-input')) {
    const field = input.closest('.field').dataset.field;
    if (input.type === 'checkbox') {
      const asDefault = input.checked === (input.dataset.default === 'true');
      if (!asDefault || (isLayerObject(previous) && field in previous)) layer[field] = input.checked;
      continue;
    }
    const value = parseField(input.value);
    if (value !== undefined) layer[field] = value;
  }
  for (const item of row.querySelectorAll('.extra-key')) layer[item.dataset.field] = previous?.[item.dataset.field];
  return layer;
}

// A layer of another kind: the fields both kinds take are kept, the new kind's required ones
// come from its preset.
export function changeKind(layer, kind, kinds) {
  const fields = new Set(kinds.get(kind).fields.map((field) => field.name));
  const kept = Object.fromEntries(Object.entries(isLayerObject(layer) ? layer : {}).filter(([key]) => fields.has(key)));
  const named = isLayerObject(layer) && layer.name !== undefined ? { name: layer.name } : {};
  return { kind, ...named, ...(EDITOR.presets[kind] ?? {}), ...kept };
}

export function newLayer(kind) {
  return { kind, ...(EDITOR.presets[kind] ?? {}) };
}
