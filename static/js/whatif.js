// What-if on a net page: the form and the presets fetch the edited net's results as HTML (the
// same template the server renders for a shared link) and swap them in place; the address
// follows, so the what-if can be shared. Without JavaScript the form and the links load the
// page with the same state. The charts draw the comparison the fragment carries.

import { embeddedJSON } from './api.js';
import { drawOverlay } from './netcharts.js';
import { enhanceTables } from './table.js';

export async function drawWhatIf() {
  if (!document.getElementById('whatif-data')) return;
  const { comparison } = embeddedJSON('whatif-data');
  await drawOverlay('whatif', comparison, { id: `${comparison.a.id}-what-if`, name: comparison.b.name });
}

function queryOf(form) {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (value !== '') params.append(key, value);
  return params;
}

// The form shows the state the results are for (a preset fills its fields).
function fillForm(form, params) {
  for (const input of form.querySelectorAll('input')) {
    const values = params.getAll(input.name);
    if (input.type === 'checkbox') input.checked = values.includes(input.value);
    else input.value = values.at(-1) ?? '';
  }
}

async function show(net, form, params) {
  const live = document.getElementById('whatif-live');
  live.setAttribute('aria-busy', 'true');
  try {
    const response = await fetch(`/nets/${net}/whatif?${params}`, { headers: { Accept: 'text/html' } });
    live.innerHTML = await response.text();
    const results = document.getElementById('whatif-results');
    const state = new URLSearchParams(results ? results.dataset.share : params);
    if (results) fillForm(form, state);
    const query = state.toString();
    history.replaceState(history.state, '', `/nets/${net}${query ? `?${query}` : ''}#whatif`);
    enhanceTables(live);
    await drawWhatIf();
    (results?.querySelector('h3') ?? live.querySelector('[role=alert]'))?.setAttribute('tabindex', '-1');
    (results?.querySelector('h3') ?? live.querySelector('[role=alert]'))?.focus({ preventScroll: false });
  } catch (error) {
    live.innerHTML = '';
    const message = document.createElement('p');
    message.className = 'form-error';
    message.setAttribute('role', 'alert');
    message.textContent = `Could not compute the what-if: ${error.message}`;
    live.append(message);
  } finally {
    live.removeAttribute('aria-busy');
  }
}

export function wireWhatIf() {
  const form = document.getElementById('whatif-form');
  if (!form) return;
  const net = form.getAttribute('action').split('/')[2].split('#')[0];
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    show(net, form, queryOf(form));
  });
  for (const link of document.querySelectorAll('a[data-preset]')) {
    link.addEventListener('click', (event) => {
      event.preventDefault();
      show(net, form, new URLSearchParams({ preset: link.dataset.preset }));
    });
  }
  form.querySelector('a[href$="#whatif"]')?.addEventListener('click', (event) => {
    event.preventDefault();
    fillForm(form, new URLSearchParams());
    document.getElementById('whatif-live').replaceChildren();
    history.replaceState(history.state, '', `/nets/${net}#whatif`);
  });
}

