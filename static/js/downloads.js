// Keyboard-reachable downloads: PNG of a chart (Plotly's modebar button is mouse-only) and
// files built in the page (the custom spec as JSON, its table as CSV).

import { downloadPng } from './charts.js';

export function enablePngButtons(root = document) {
  for (const button of root.querySelectorAll('[data-png]')) {
    if (button.dataset.ready) continue;
    button.dataset.ready = 'yes';
    button.hidden = false;
    button.addEventListener('click', () => {
      const el = document.getElementById(button.dataset.png);
      if (el) downloadPng(el);
    });
  }
}

export { saveBlob } from './save.js';
