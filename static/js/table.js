// Layer tables: every row's arithmetic is in the HTML (readable without JavaScript); here the
// arithmetic rows fold away behind a toggle, and the open rows are kept in the URL's hash
// (#rows=conv1,fc6) so a shared link opens the same rows.

const HASH_KEY = 'rows';

function openNamesFromHash() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const value = params.get(HASH_KEY);
  return new Set(value ? value.split(',') : []);
}

function writeHash(tables) {
  const open = [];
  for (const table of tables) {
    for (const row of table.querySelectorAll('tr.layer.open')) open.push(row.dataset.layer);
  }
  const hash = open.length ? `#${HASH_KEY}=${[...new Set(open)].join(',')}` : '';
  history.replaceState(history.state, '', window.location.pathname + window.location.search + hash);
}

function setOpen(button, open) {
  const row = button.closest('tr');
  const arith = document.getElementById(button.getAttribute('aria-controls'));
  button.setAttribute('aria-expanded', String(open));
  row.classList.toggle('open', open);
  if (arith) arith.hidden = !open;
}

export function enhanceTables(root = document) {
  const tables = [...root.querySelectorAll('table[data-rows-table]')];
  const wanted = openNamesFromHash();
  for (const table of tables) {
    for (const button of table.querySelectorAll('button.expand')) {
      const row = button.closest('tr');
      button.hidden = false;
      setOpen(button, wanted.has(row.dataset.layer));
      button.addEventListener('click', () => {
        setOpen(button, button.getAttribute('aria-expanded') !== 'true');
        writeHash(tables);
      });
    }
    const first = table.querySelector(`tr.layer.open`);
    if (first && root === document) {
      first.classList.add('target');
      first.scrollIntoView({ block: 'center' });
    }
  }
  for (const toggle of root.querySelectorAll('[data-expand-all]')) {
    const table = document.getElementById(toggle.dataset.expandAll);
    if (!table) continue;
    toggle.hidden = false;
    toggle.addEventListener('click', () => {
      const buttons = [...table.querySelectorAll('button.expand')];
      const open = buttons.some((b) => b.getAttribute('aria-expanded') !== 'true');
      buttons.forEach((b) => setOpen(b, open));
      toggle.textContent = open ? 'Hide all arithmetic' : 'Show all arithmetic';
      writeHash(tables);
    });
  }
}
