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
  focusableScrollers();
}

// A box that scrolls (a wide table on a phone, a strip of feature maps) can be reached and
// scrolled from the keyboard: while it overflows it is a named region in the tab order.
const SCROLLERS = '.table-wrap, .feature-scroll';

function nameOf(box) {
  const caption = box.querySelector('caption, [aria-label]');
  return caption?.getAttribute('aria-label') || caption?.textContent.trim() || 'Scrollable content';
}

function markScroller(box) {
  const scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
  if (scrolls === box.hasAttribute('data-scrolls')) return;
  box.toggleAttribute('data-scrolls', scrolls);
  if (scrolls) {
    box.tabIndex = 0;
    box.setAttribute('role', 'region');
    box.setAttribute('aria-label', nameOf(box));
  } else {
    box.removeAttribute('tabindex');
    box.removeAttribute('role');
    box.removeAttribute('aria-label');
  }
}

export function focusableScrollers(root = document) {
  const observer = new ResizeObserver((entries) => entries.forEach((entry) => markScroller(entry.target)));
  const watch = (box) => {
    if (box.dataset.watched) return;
    box.dataset.watched = 'yes';
    observer.observe(box);
    const content = box.firstElementChild;
    if (content) observer.observe(content);
    markScroller(box);
  };
  root.querySelectorAll(SCROLLERS).forEach(watch);
  // Boxes added later (the editor's table, a chart's numbers, the feature maps) too.
  new MutationObserver(() => document.querySelectorAll(SCROLLERS).forEach(watch)).observe(document.body, { childList: true, subtree: true });
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
