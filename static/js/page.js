// What every page does first: mark that JavaScript runs (CSS hides the no-JS notes), fold the
// layer tables, and wire the PNG and 3D buttons.

import { drawBoxes, toggle3d } from './boxes.js';
import { draw, showFailure } from './charts.js';
import { enablePngButtons } from './downloads.js';
import { enhanceTables } from './table.js';

export function start() {
  document.documentElement.classList.add('js');
  enhanceTables();
  enablePngButtons();
  enableRotateButtons();
}

export function enableRotateButtons(root = document) {
  for (const button of root.querySelectorAll('[data-rotate]')) {
    if (button.dataset.ready) continue;
    button.dataset.ready = 'yes';
    button.hidden = false;
    button.addEventListener('click', async () => {
      const el = document.getElementById(button.dataset.rotate);
      button.disabled = true;
      try {
        const rotating = await toggle3d(el);
        button.setAttribute('aria-pressed', String(rotating));
        button.textContent = rotating ? 'Back to the flat view' : 'Rotate in 3D';
      } catch (error) {
        showFailure(el, error.message);
      } finally {
        button.disabled = false;
      }
    });
  }
}

// Draw a figure into #id if the element exists; report a failure inside the element.
export function drawInto(id, figure) {
  const el = document.getElementById(id);
  if (!el) return Promise.resolve(null);
  return draw(el, figure).then(() => el);
}

export function drawBoxesInto(id, table) {
  const el = document.getElementById(id);
  if (!el) return Promise.resolve(null);
  return drawBoxes(el, table).then(() => el);
}

// Resolves once the browser has painted what was drawn so far (the next frame has run), so the
// next chart starts in a new task. A hidden tab paints no frames: there, only the task ends.
export function afterPaint() {
  return new Promise((resolve) => {
    if (document.visibilityState === 'hidden') setTimeout(resolve, 0);
    else requestAnimationFrame(() => setTimeout(resolve, 0));
  });
}

export function fail(ids, error) {
  for (const id of ids) {
    const el = document.getElementById(id);
    if (el) showFailure(el, `Could not draw this chart: ${error.message}`);
  }
}
