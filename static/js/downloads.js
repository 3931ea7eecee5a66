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

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
