// The receptive field on the photo: after an upload, a cell of a feature map is picked (click,
// or Enter and the arrow keys on a focused map) and its receptive field is drawn on the picture
// as the net saw it (resized and center-cropped by the served model's preprocessing), with the
// centres of its neighbours one jump apart. The crop, the RF, the jump and the start come from
// GET /api/architectures/{id}/receptive-fields; this only places them on the canvas.

import { getJSON } from './api.js';

const CANVAS_MAX = 360;
const MIN_DOT_GAP = 9; // CSS pixels between the centres of two units, to draw them all

function loaded(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('the picture could not be read again'));
    img.src = url;
  });
}

function draw(panel, picture, data, field, cell) {
  const { view } = data;
  const canvas = panel.querySelector('[data-rf-canvas]');
  const side = Math.min(CANVAS_MAX, panel.clientWidth || CANVAS_MAX);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(side * ratio);
  canvas.height = Math.round(side * ratio);
  canvas.style.width = `${side}px`;
  canvas.style.height = `${side}px`;
  const ctx = canvas.getContext('2d');
  const [left, top, right, bottom] = view.source_box;
  ctx.drawImage(picture, left, top, right - left, bottom - top, 0, 0, canvas.width, canvas.height);
  const scale = canvas.width / data.input; // canvas pixels per net input pixel
  const at = (pixel) => pixel * scale;
  const origin = (i) => field.start + i * field.jump;
  // every unit's centre, one jump apart: faint; the picked cell's eight neighbours: their
  // centres marked and their fields dashed
  const centre = (i) => at(origin(i) + field.receptive_field / 2);
  const dot = (col, row, radius) => {
    ctx.beginPath();
    ctx.arc(centre(col), centre(row), radius, 0, 2 * Math.PI);
    ctx.fill();
  };
  ctx.fillStyle = 'rgba(255, 255, 255, 0.55)';
  const sparse = at(field.jump) / ratio >= MIN_DOT_GAP; // denser, the dots would hide the picture
  for (let row = 0; sparse && row < field.output.height; row += 1) {
    for (let col = 0; col < field.output.width; col += 1) dot(col, row, Math.max(0.75, ratio));
  }
  ctx.setLineDash([4 * ratio, 3 * ratio]);
  ctx.lineWidth = ratio;
  ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)';
  ctx.fillStyle = '#ffffff';
  for (const dr of [-1, 0, 1]) {
    for (const dc of [-1, 0, 1]) {
      const row = cell.row + dr;
      const col = cell.col + dc;
      if ((dr || dc) && row >= 0 && col >= 0 && row < field.output.height && col < field.output.width) {
        ctx.strokeRect(at(origin(col)), at(origin(row)), at(field.receptive_field), at(field.receptive_field));
        dot(col, row, 2.5 * ratio);
      }
    }
  }
  ctx.setLineDash([]);
  // the picked cell's field, over the zero padding where it reaches past the crop
  const x = at(origin(cell.col));
  const y = at(origin(cell.row));
  const size = at(field.receptive_field);
  ctx.fillStyle = 'rgba(250, 204, 21, 0.28)';
  ctx.fillRect(x, y, size, size);
  ctx.lineWidth = Math.max(2, 2 * ratio);
  ctx.strokeStyle = '#facc15';
  ctx.strokeRect(x, y, size, size);
  ctx.fillStyle = '#be123c';
  ctx.beginPath();
  ctx.arc(centre(cell.col), centre(cell.row), Math.max(3, 3 * ratio), 0, 2 * Math.PI);
  ctx.fill();
  const first = [origin(cell.col), origin(cell.row)];
  const last = first.map((value) => value + field.receptive_field - 1);
  const outside = first.some((v) => v < 0) || last.some((v) => v >= data.input);
  panel.querySelector('[data-rf-numbers]').textContent =
    `${field.name}, row ${cell.row + 1} and column ${cell.col + 1} of its ${field.output.width}×${field.output.height}: ` +
    `receptive field ${field.receptive_field}×${field.receptive_field} input pixels, x ${first[0]} to ${last[0]}, y ${first[1]} to ${last[1]}` +
    `${outside ? ' (past the edge: zero padding)' : ''}. ` +
    `Its neighbours are ${field.jump} px apart (jump ${field.jump}); the first cell's field starts at ${field.start}.`;
  panel.dataset.layer = field.name;
  panel.dataset.cell = `${cell.row},${cell.col}`;
}

function cellAt(event, img, field) {
  const box = img.getBoundingClientRect();
  const col = Math.floor(((event.clientX - box.left) / box.width) * field.output.width);
  const row = Math.floor(((event.clientY - box.top) / box.height) * field.output.height);
  const clamp = (v, n) => Math.min(n - 1, Math.max(0, v));
  return { row: clamp(row, field.output.height), col: clamp(col, field.output.width) };
}

const MOVES = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };

// strip: the feature strip's figure; answer: POST /api/predict/{id}/features; pictureUrl: the
// upload (an object URL).
export async function wireReceptiveField(strip, answer, pictureUrl) {
  const panel = strip.querySelector('[data-rf-photo]');
  if (!panel || !pictureUrl) return;
  try {
    await wire(panel, strip, answer, pictureUrl);
  } catch (error) {
    panel.querySelector('[data-rf-view]').textContent = '';
    panel.querySelector('[data-rf-numbers]').textContent = `Could not place the receptive fields on the picture: ${error.message}`;
    panel.hidden = false;
  }
}

async function wire(panel, strip, answer, pictureUrl) {
  const picture = await loaded(pictureUrl);
  const query = new URLSearchParams({ width: picture.naturalWidth, height: picture.naturalHeight });
  const data = await getJSON(`/api/architectures/${answer.id}/receptive-fields?${query}`);
  const fields = new Map(data.layers.map((field) => [field.index, field]));
  const { view } = data;
  panel.querySelector('[data-rf-view]').textContent =
    `Your ${view.width}×${view.height} picture as ${answer.id} saw it: resized so its shorter side is ${view.resize} px, ` +
    `then center-cropped to ${view.crop}×${view.crop}.`;
  panel.hidden = false;
  const columns = [...strip.querySelectorAll('[data-feature-columns] > li')].slice(1); // the input first
  let current = null;
  const pick = (field, cell) => {
    current = { field, cell };
    draw(panel, picture, data, field, cell);
  };
  answer.layers.forEach((layer, k) => {
    const field = fields.get(layer.index);
    if (!field || !columns[k]) return;
    for (const img of columns[k].querySelectorAll('img')) {
      img.tabIndex = 0;
      img.setAttribute('role', 'button');
      img.setAttribute('aria-label', `${img.title}. Show what one cell of ${layer.name} sees`);
      img.classList.add('rf-pickable');
      img.addEventListener('click', (event) => pick(field, cellAt(event, img, field)));
      img.addEventListener('keydown', (event) => {
        const move = MOVES[event.key];
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          const centre = { row: Math.floor(field.output.height / 2), col: Math.floor(field.output.width / 2) };
          pick(field, current?.field === field ? current.cell : centre);
        } else if (move && current?.field === field) {
          event.preventDefault();
          const row = Math.min(field.output.height - 1, Math.max(0, current.cell.row + move[0]));
          const col = Math.min(field.output.width - 1, Math.max(0, current.cell.col + move[1]));
          pick(field, { row, col });
        }
      });
    }
  });
  // a first cell, so the view is never empty: the centre of the last layer drawn
  const last = answer.layers.findLast((layer) => fields.has(layer.index));
  if (last) {
    const field = fields.get(last.index);
    pick(field, { row: Math.floor(field.output.height / 2), col: Math.floor(field.output.width / 2) });
  }
}
