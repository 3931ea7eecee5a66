// Practice: one layer at a time, the student types the output volume and the parameter count,
// presses Enter, and POST /api/practice/check says whether it is right, which slip a wrong
// answer shows, and the layer's arithmetic. Every number comes from the API or from the plan the
// page carries (templates/practice.html); nothing is computed here.
//
// Progress (each answer and what the API said of it) is kept in this browser's localStorage,
// under the net's id or the spec's link; the current layer is in the URL's hash (#layer=conv2),
// so a reload or a shared link opens the same layer. The server stores nothing.

import { ApiError, embeddedJSON, post } from '../api.js';
import { exactCount } from '../format.js';
import { start } from '../page.js';

const STORE_PREFIX = 'convatlas-practice-v1:';
const HASH_KEY = 'layer';
const TIMES = '×';
const QUANTITIES = ['output', 'params'];

// A typed answer may be unrounded (55.25): shown as typed; whole numbers with their separators.
const number = (value) => (Number.isSafeInteger(value) ? exactCount(value) : String(value));
const volumeText = (values) => values.map(number).join(TIMES);
const valueText = (quantity, value) => (quantity === 'output' ? volumeText(value) : number(value));

function load(key) {
  try {
    const saved = JSON.parse(window.localStorage.getItem(key) ?? '{}');
    return saved && typeof saved.answers === 'object' && saved.answers ? saved : { answers: {} };
  } catch {
    return { answers: {} }; // storage refused (private mode) or damaged: start afresh
  }
}

function save(state) {
  try {
    window.localStorage.setItem(state.key, JSON.stringify({ answers: state.answers }));
  } catch {
    // Storage full or refused: the session still works, it is just not kept.
  }
}

const answered = (state, step, quantity) => state.answers[step.name]?.[quantity];
const done = (state, step) => step.asks.every((quantity) => answered(state, step, quantity));

// -- the card --------------------------------------------------------------------------------

function settingItems(step) {
  return Object.entries(step.settings).map(([key, value]) => {
    const item = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'key';
    name.textContent = key.replace('_', ' ');
    const shown = typeof value === 'number' ? exactCount(value) : String(value);
    item.append(name, shown);
    return item;
  });
}

function fieldsOf(form, quantity, step) {
  if (quantity === 'params') return [form.elements.params];
  if (step.vector) return [form.elements.units]; // not "length": a form's own property
  return [form.elements.width, form.elements.height, form.elements.depth];
}

function showFieldset(ui, step, quantity) {
  const set = ui.form.querySelector(`[data-quantity="${quantity}"]`);
  const asked = step.asks.includes(quantity);
  set.querySelector('[data-volume-fields]')?.toggleAttribute('hidden', !asked || step.vector);
  set.querySelector('[data-vector-fields]')?.toggleAttribute('hidden', !asked || !step.vector);
  set.querySelector('[data-params-fields]')?.toggleAttribute('hidden', !asked);
  const given = set.querySelector(`[data-given="${quantity}"]`);
  given.textContent = asked ? '' : `${valueText(quantity, step.given[quantity])}: ${step.given_why[quantity]} Nothing new to compute here.`;
  for (const input of set.querySelectorAll('input')) {
    input.value = '';
    input.readOnly = false;
    input.removeAttribute('aria-invalid');
  }
  const feedback = set.querySelector('[data-feedback]');
  feedback.replaceChildren();
  feedback.className = 'feedback';
}

function paragraph(className, ...parts) {
  const p = document.createElement('p');
  if (className) p.className = className;
  p.append(...parts);
  return p;
}

function showFeedback(ui, state, step, quantity, record) {
  const feedback = ui.form.querySelector(`[data-feedback="${quantity}"]`);
  const { result } = record;
  const lines = [];
  if (result.correct) {
    lines.push(paragraph('verdict', `✓ Right: ${valueText(quantity, result.exact)}`));
  } else {
    // "Forgot the biases, and forgot the input depth": each title after the first in lower case.
    const titles = result.slips.map((code, i) => {
      const title = state.titles[code] ?? code;
      return i ? title[0].toLowerCase() + title.slice(1) : title;
    });
    const verdict = paragraph('verdict', `✗ ${valueText(quantity, result.exact)}, not your ${valueText(quantity, record.answer)}`);
    lines.push(verdict);
    if (result.slips.length) {
      const code = document.createElement('span');
      code.className = 'slip-code';
      code.textContent = result.slips.join(' + ');
      lines.push(paragraph('slip', `${titles.join(', and ')} `, code));
    }
  }
  lines.push(paragraph('', result.explanation));
  const formula = document.createElement('code');
  formula.textContent = result.formula;
  lines.push(paragraph('arith', 'The arithmetic: ', formula));
  feedback.replaceChildren(...lines);
  feedback.className = `feedback ${result.correct ? 'right' : 'wrong'}`;
  const fields = fieldsOf(ui.form, quantity, step);
  const values = quantity === 'output' ? (step.vector ? [record.answer[2]] : record.answer) : [record.answer];
  fields.forEach((input, i) => {
    input.value = String(values[i]);
    input.readOnly = true;
    input.setAttribute('aria-invalid', String(!result.correct));
  });
}

function showStep(ui, state, index, { preventScroll = false } = {}) {
  const step = state.steps[index];
  state.current = index;
  ui.done.hidden = true;
  ui.step.hidden = false;
  ui.card.querySelector('#step-count').textContent = `Layer ${index + 1} of ${state.steps.length}`;
  ui.card.querySelector('[data-step-name]').textContent = step.name;
  ui.card.querySelector('[data-step-kind]').textContent = step.kind;
  ui.card.querySelector('[data-step-settings]').replaceChildren(...settingItems(step));
  ui.card.querySelector('[data-step-input]').textContent = volumeText([step.input.width, step.input.height, step.input.channels]);
  ui.problem.textContent = '';
  for (const quantity of QUANTITIES) {
    showFieldset(ui, step, quantity);
    const record = answered(state, step, quantity);
    if (record) showFeedback(ui, state, step, quantity, record);
  }
  const finished = done(state, step);
  ui.check.hidden = finished;
  ui.next.hidden = !finished;
  ui.next.textContent = nextIndex(state, index) === null ? 'See how it went' : 'Next layer';
  writeHash(step.name);
  markCurrent(ui, index);
  const target = finished ? ui.next : fieldsOf(ui.form, step.asks[0], step)[0];
  target.focus({ preventScroll });
}

// -- answers ---------------------------------------------------------------------------------

// What the student typed, as the API takes it; null (and the field marked) when a field is not
// a number. Decimals are allowed: an unrounded 55.25 is itself a slip the API names.
function readAnswer(ui, step, quantity) {
  const fields = fieldsOf(ui.form, quantity, step);
  const values = fields.map((input) => {
    const text = input.value.trim().replace(/[,_\s]/g, '');
    const value = text === '' ? NaN : Number(text);
    const ok = Number.isFinite(value) && value >= 0;
    input.setAttribute('aria-invalid', String(!ok));
    return ok ? value : null;
  });
  if (values.includes(null)) return null;
  if (quantity === 'params') return values[0];
  return step.vector ? [1, 1, values[0]] : values;
}

async function checkStep(ui, state) {
  const step = state.steps[state.current];
  const pending = step.asks.filter((quantity) => !answered(state, step, quantity));
  const answers = pending.map((quantity) => readAnswer(ui, step, quantity));
  const missing = answers.findIndex((answer) => answer === null);
  if (missing >= 0) {
    ui.problem.textContent = 'Fill in every box with a number (digits, and a decimal point if you need one).';
    ui.form.querySelector('[aria-invalid="true"]')?.focus();
    return;
  }
  ui.problem.textContent = '';
  ui.check.disabled = true;
  try {
    const results = await Promise.all(
      pending.map((quantity, i) => {
        const body = { layer: step.name, quantity, answer: answers[i] };
        if (state.net) body.net = state.net;
        else body.spec = state.spec;
        return post(ui.root.dataset.checkUrl, body);
      }),
    );
    state.answers[step.name] ??= {};
    pending.forEach((quantity, i) => {
      state.answers[step.name][quantity] = { answer: answers[i], result: results[i] };
    });
    save(state);
    showStep(ui, state, state.current);
    showScore(ui, state);
  } catch (error) {
    ui.problem.textContent = error instanceof ApiError ? `The server refused the answer: ${error.message}` : `Could not check: ${error.message}`;
  } finally {
    ui.check.disabled = false;
  }
}

// -- progress ----------------------------------------------------------------------------------

function tally(state) {
  let right = 0;
  let given = 0;
  const slips = new Map();
  for (const step of state.steps) {
    for (const quantity of step.asks) {
      const record = answered(state, step, quantity);
      if (!record) continue;
      given += 1;
      if (record.result.correct) right += 1;
      for (const code of record.result.slips) slips.set(code, (slips.get(code) ?? 0) + 1);
    }
  }
  const asked = state.steps.reduce((sum, step) => sum + step.asks.length, 0);
  return { right, given, asked, slips };
}

function markOf(state, step) {
  if (!step.asks.length) return { text: 'nothing new to compute', kind: '' };
  const records = step.asks.map((quantity) => answered(state, step, quantity)).filter(Boolean);
  if (!records.length) return { text: '', kind: '' };
  const slips = records.flatMap((record) => record.result.slips);
  if (records.every((record) => record.result.correct) && records.length === step.asks.length) {
    return { text: '✓ right', kind: 'right' };
  }
  const wrong = records.filter((record) => !record.result.correct).length;
  const text = slips.length ? `✗ ${slips.join(', ')}` : wrong ? `✗ ${wrong} wrong` : '… part done';
  return { text, kind: wrong ? 'wrong' : '' };
}

function showScore(ui, state) {
  const { right, given, asked, slips } = tally(state);
  const slipText = slips.size ? ` · slips: ${[...slips.values()].reduce((a, b) => a + b, 0)}` : '';
  ui.score.textContent = `${given} of ${asked} answered · ${right} right${slipText}`;
  for (const step of state.steps) {
    const mark = ui.list.querySelector(`[data-step-item="${step.index}"] [data-mark]`);
    const { text, kind } = markOf(state, step);
    mark.textContent = text;
    mark.className = `mark ${kind}`.trim();
  }
}

function markCurrent(ui, index) {
  for (const button of ui.list.querySelectorAll('[data-goto]')) {
    if (Number(button.dataset.goto) === index) button.setAttribute('aria-current', 'step');
    else button.removeAttribute('aria-current');
  }
}

function nextIndex(state, from) {
  for (let i = from + 1; i < state.steps.length; i += 1) {
    if (state.steps[i].asks.length) return i;
  }
  return null;
}

function showDone(ui, state) {
  const { right, given, asked, slips } = tally(state);
  ui.step.hidden = true;
  ui.done.hidden = false;
  state.current = null;
  markCurrent(ui, -1);
  writeHash('');
  ui.done.querySelector('[data-done-score]').textContent = `${right} of ${asked} answers right${given < asked ? ` (${asked - given} not answered)` : ''}.`;
  const items = [...slips.entries()].map(([code, times]) => {
    const item = document.createElement('li');
    const name = document.createElement('code');
    name.textContent = code;
    item.append(`${state.titles[code] ?? code} (`, name, `): ${times}×`);
    return item;
  });
  if (!items.length) {
    const item = document.createElement('li');
    item.textContent = 'No slips named.';
    items.push(item);
  }
  ui.done.querySelector('[data-done-slips]').replaceChildren(...items);
  ui.done.querySelector('#done-title').focus();
}

function goOn(ui, state) {
  const next = nextIndex(state, state.current);
  if (next === null) showDone(ui, state);
  else showStep(ui, state, next);
}

function restart(ui, state) {
  state.answers = {};
  save(state);
  showScore(ui, state);
  showStep(ui, state, firstOpen(state));
}

function firstOpen(state) {
  const open = state.steps.findIndex((step) => step.asks.length && !done(state, step));
  return open >= 0 ? open : state.steps.findIndex((step) => step.asks.length);
}

function writeHash(name) {
  const hash = name ? `#${HASH_KEY}=${encodeURIComponent(name)}` : '';
  history.replaceState(history.state, '', window.location.pathname + window.location.search + hash);
}

function hashIndex(state) {
  const name = new URLSearchParams(window.location.hash.slice(1)).get(HASH_KEY);
  return name === null ? -1 : state.steps.findIndex((step) => step.name === name);
}

function startPractice() {
  const root = document.getElementById('practice');
  if (!root) return;
  const data = embeddedJSON('practice-data');
  const key = STORE_PREFIX + data.store;
  const state = { ...data, key, answers: load(key).answers, current: null };
  const card = root.querySelector('#practice-card');
  const ui = {
    root,
    card,
    step: card.querySelector('[data-step]'),
    done: card.querySelector('[data-done]'),
    form: card.querySelector('#answer-form'),
    check: card.querySelector('[data-check]'),
    next: card.querySelector('[data-next]'),
    problem: card.querySelector('[data-form-problem]'),
    score: root.querySelector('[data-score]'),
    list: root.querySelector('[data-step-list]'),
  };
  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!ui.check.hidden) checkStep(ui, state);
  });
  ui.next.addEventListener('click', () => goOn(ui, state));
  for (const button of root.querySelectorAll('[data-restart]')) {
    button.addEventListener('click', () => restart(ui, state));
  }
  ui.list.addEventListener('click', (event) => {
    const button = event.target.closest('[data-goto]');
    if (button) showStep(ui, state, Number(button.dataset.goto));
  });
  root.hidden = false;
  showScore(ui, state);
  const asked = hashIndex(state);
  // The first box has the focus at once, so a student can type straight away; the page stays
  // scrolled to its top, where the net and the instructions are.
  showStep(ui, state, asked >= 0 ? asked : firstOpen(state), { preventScroll: true });
}

start();
startPractice();
