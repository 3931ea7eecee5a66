// The feature-map strip: one column per conv and pool layer, its most active channels as the
// PNGs the API computed, each drawn at a size that grows with the layer's width (as its square
// root: not to scale, so 227 and 6 both show), so W×H visibly shrinks while the written depth D
// grows. Maps of random weights are captioned as such. Nothing here computes a figure about the net.

import { FEATURE_MAPS } from './config.js';

const volumeText = (v) => `${v.width}×${v.height}×${v.channels}`;

function drawnSide(pixels) {
  const side = FEATURE_MAPS.scale * pixels ** FEATURE_MAPS.exponent;
  return Math.round(Math.min(FEATURE_MAPS.max, Math.max(FEATURE_MAPS.min, side)));
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function picture(src, width, height, title) {
  const img = element('img');
  img.src = src;
  img.width = width;
  img.height = height;
  img.alt = '';
  if (title) img.title = title;
  return img;
}

function column(kind, name, volume, images) {
  const item = element('li', `feature-col kind-${kind}`);
  const maps = element('div', 'maps');
  maps.append(...images);
  const label = element('div', 'feature-label');
  label.append(element('span', 'feature-name', name), element('span', 'feature-volume', volumeText(volume)));
  item.append(maps, label);
  return item;
}

function inputColumn(input, thumbUrl) {
  const side = drawnSide(input.width);
  const images = thumbUrl ? [picture(thumbUrl, side, Math.round((side * input.height) / input.width), 'your picture')] : [];
  return column('input', 'input', input, images);
}

function layerColumn(layer) {
  const side = drawnSide(layer.output.width);
  const images = layer.channels.map((map) =>
    picture(
      `data:image/png;base64,${map.png}`,
      side,
      Math.round((side * map.height) / map.width),
      `${layer.name}, channel ${map.channel}: mean activity ${map.activity.toPrecision(3)}`,
    ),
  );
  return column(layer.kind, layer.name, layer.output, images);
}

// answer: POST /api/predict/{id}/features; thumbUrl: the picture as uploaded (an object URL).
export function drawFeatureStrip(figure, answer, thumbUrl) {
  const list = figure.querySelector('[data-feature-columns]');
  list.replaceChildren(inputColumn(answer.input, thumbUrl), ...answer.layers.map(layerColumn));
  figure.dataset.layers = String(answer.layers.length);
  figure.querySelector('[data-untrained-note]').hidden = answer.weights !== 'untrained';
  figure.hidden = false;
}

export function showStripFailure(figure, message) {
  const list = figure.querySelector('[data-feature-columns]');
  list.replaceChildren(element('li', 'feature-failed', message));
  figure.hidden = false;
}
