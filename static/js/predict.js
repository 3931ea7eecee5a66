// Live inference on a page: pick or drop a picture, see each net's top-5, the provider and the
// timings, and every conv and pool layer's most active channels under the volume chart.
//
// Each net's state is asked first (GET /api/predict/{id}: always 200 for a known net), so a net
// that is not built yet shows the service's reason instead of a failed request; while a build
// runs the page asks again every few seconds. Every figure shown comes from the API's answers.

import { ApiError, getJSON, postForm } from './api.js';
import { top5Figure } from './charts.js';
import { COLORS, PREDICT } from './config.js';
import { drawFeatureStrip, showStripFailure } from './featuremaps.js';
import { drawInto } from './page.js';
import { wireReceptiveField } from './rfphoto.js';
import { wireSamples } from './samples.js';

const SIDE_COLORS = { a: COLORS.netA, b: COLORS.netB };
const megabytes = (bytes) => {
  const mb = bytes / 1024 / 1024;
  return `${Number.isInteger(mb) ? mb : mb.toFixed(mb < 1 ? 2 : 1)} MB`;
};
const milliseconds = (value) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
const PROVIDER_NAMES = { CPUExecutionProvider: 'CPU', CUDAExecutionProvider: 'CUDA GPU', TensorrtExecutionProvider: 'TensorRT' };

function netOf(el) {
  const side = [...el.classList].find((name) => name.startsWith('side-'))?.slice(5);
  return {
    el,
    id: el.dataset.id,
    prefix: el.dataset.prefix,
    color: SIDE_COLORS[side] ?? COLORS.top5,
    infoUrl: el.dataset.infoUrl,
    predictUrl: el.dataset.predictUrl,
    featuresUrl: el.dataset.featuresUrl,
    info: null,
    part: (name) => el.querySelector(`[data-${name}]`),
  };
}

function setStatus(widget, message, kind = '') {
  widget.status.textContent = message;
  widget.status.className = `upload-status ${kind}`.trim();
}

function setChip(net, text, kind) {
  const chip = net.part('state-chip');
  chip.textContent = text;
  chip.className = `state-chip ${kind}`;
}

// Plain sentences with `commands` in code, as the server writes them (app/web/weights.py).
function sentenceNodes(text) {
  return text.split('`').map((part, i) => {
    if (i % 2 === 0) return document.createTextNode(part);
    const code = document.createElement('code');
    code.textContent = part;
    return code;
  });
}

// The banner follows what the API says about the weights, once it has said it: a net whose
// build finished while the page was open gets the banner and the server's sentence on why.
function showWeights(net, served) {
  if (!served) return;
  const banner = net.part('untrained-banner');
  if (served.untrained) net.part('weights-detail').replaceChildren(...sentenceNodes(served.detail));
  banner.hidden = !served.untrained;
}

function showInfo(net, info) {
  net.info = info;
  showWeights(net, info.served);
  const state = net.part('net-state');
  if (info.available) {
    const provider = PROVIDER_NAMES[info.provider ?? info.service_provider] ?? info.service_provider;
    setChip(net, `ready · ${provider}`, 'ready');
    state.textContent = '';
    return;
  }
  setChip(net, info.build_running ? 'building…' : 'not built', 'waiting');
  state.textContent = info.build_running
    ? `The model is being built right now; try again in a minute (this page checks every ${PREDICT.recheckMs / 1000} s). ${info.reason}`
    : `Not available: ${info.reason}.`;
}

async function checkNets(widget) {
  clearTimeout(widget.recheck);
  await Promise.all(
    widget.nets.map(async (net) => {
      try {
        showInfo(net, await getJSON(net.infoUrl));
      } catch (error) {
        setChip(net, 'unavailable', 'waiting');
        net.part('net-state').textContent = `Could not ask the server: ${error.message}`;
      }
    }),
  );
  const ready = widget.nets.filter((net) => net.info?.available);
  widget.input.disabled = ready.length === 0;
  widget.dropzone.classList.toggle('disabled', ready.length === 0);
  const limit = widget.nets.find((net) => net.info)?.info.max_upload_bytes;
  if (limit) {
    widget.maxBytes = limit;
    widget.root.querySelector('[data-limit]').textContent = `, up to ${megabytes(limit)}`;
  }
  if (widget.nets.some((net) => net.info && !net.info.available && net.info.build_running)) {
    widget.recheck = setTimeout(() => checkNets(widget), PREDICT.recheckMs);
  }
}

// A problem found before sending: nothing the server would refuse is sent.
function problemWith(widget, file) {
  const accepted = widget.input.accept.split(',');
  if (file.type && !accepted.includes(file.type)) {
    return `That file is ${file.type}, not a picture this server reads: choose a JPEG, PNG, GIF, BMP or WebP.`;
  }
  if (widget.maxBytes && file.size > widget.maxBytes) {
    return `That picture is ${megabytes(file.size)}; the limit is ${megabytes(widget.maxBytes)}.`;
  }
  return null;
}

function showThumbnail(widget, file) {
  if (widget.thumbUrl) URL.revokeObjectURL(widget.thumbUrl);
  widget.thumbUrl = URL.createObjectURL(file);
  widget.thumb.src = widget.thumbUrl;
  widget.thumb.hidden = false;
  widget.root.querySelector('[data-dropzone-empty]').hidden = true;
  widget.root.querySelector('[data-dropzone-again]').hidden = false;
}

function clearResults(widget) {
  for (const net of widget.nets) {
    document.getElementById(`${net.prefix}-top5`).hidden = true;
    net.part('top5-empty').hidden = false;
    net.part('top5-list').replaceChildren();
    net.part('run-facts').hidden = true;
    net.part('run-facts-note').hidden = true;
    const strip = document.getElementById(`${net.prefix}-features`);
    if (strip) strip.hidden = true;
  }
  widget.root.querySelector('[data-features-link]').hidden = true;
}

// The server sheds load with a 503 that says when to come back (Retry-After): wait that long
// and try again, a few times, before saying it failed.
async function patiently(widget, current, send) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await send();
    } catch (error) {
      const wait = error instanceof ApiError ? error.body?.error?.retry_after_s : undefined;
      if (!wait || attempt >= PREDICT.retries || current !== widget.run) throw error;
      setStatus(widget, `The server is busy; trying again in ${wait} s…`, 'busy');
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
  }
}

function uploadForm(file) {
  const form = new FormData();
  form.append('image', file, PREDICT.uploadName);
  return form;
}

async function predictions(widget, nets, file) {
  if (nets.length === 1) return [await postForm(nets[0].predictUrl, uploadForm(file))];
  const ids = nets.map((net) => encodeURIComponent(net.id)).join(',');
  const answer = await postForm(`${widget.root.dataset.predictManyUrl}?ids=${ids}`, uploadForm(file));
  return answer.results;
}

// Probabilities on a fixed 0 to 100 % axis: five classes at 0.1 % each are five slivers, not
// five full bars (an autoscaled axis would draw noise as confidence).
function onFullScale(figure) {
  const xaxis = { ...figure.layout.xaxis, range: [0, 1], autorange: false, tickformat: '.0%', tickvals: [0, 0.25, 0.5, 0.75, 1] };
  return { ...figure, layout: { ...figure.layout, xaxis } };
}

function drawTop5(net, result) {
  setChip(net, `ready · ${PROVIDER_NAMES[result.provider] ?? result.provider}`, 'ready');
  net.part('top5-empty').hidden = true;
  const plot = document.getElementById(`${net.prefix}-top5`);
  plot.hidden = false;
  const list = net.part('top5-list');
  list.replaceChildren(
    ...result.top5.map((entry) => {
      const item = document.createElement('li');
      item.textContent = `${entry.label}: ${(entry.probability * 100).toPrecision(3)} %`;
      return item;
    }),
  );
  const facts = net.part('run-facts');
  facts.querySelector('[data-fact="provider"]').textContent = result.provider;
  for (const box of facts.querySelectorAll('[data-fact-box]')) {
    box.hidden = !(box.dataset.factBox in result.timings_ms);
  }
  for (const [key, value] of Object.entries(result.timings_ms)) {
    const fact = facts.querySelector(`[data-fact="${key}"]`);
    if (fact) fact.textContent = milliseconds(value);
  }
  facts.hidden = false;
  net.part('run-facts-note').hidden = false;
  return drawInto(plot.id, onFullScale(top5Figure(result, net.color)));
}

async function drawFeatures(widget, net, file, run) {
  const strip = document.getElementById(`${net.prefix}-features`);
  if (!strip) return;
  try {
    const answer = await patiently(widget, run, () => postForm(net.featuresUrl, uploadForm(file)));
    if (run !== widget.run) return;
    drawFeatureStrip(strip, answer, widget.thumbUrl);
    await wireReceptiveField(strip, answer, widget.thumbUrl);
  } catch (error) {
    if (run === widget.run) showStripFailure(strip, `Could not compute the feature maps: ${error.message}`);
  }
}

// Nothing of an earlier picture stays beside this one; the status says what went wrong.
function failed(widget, error) {
  clearResults(widget);
  setStatus(widget, error.message, 'bad');
  if (error instanceof ApiError && error.body?.error?.code === 'model_unavailable') {
    checkNets(widget); // a rebuild replaced the model under us, or it went away: say why
  }
}

async function run(widget, file) {
  const problem = problemWith(widget, file);
  if (problem) {
    setStatus(widget, problem, 'bad');
    return;
  }
  const nets = widget.nets.filter((net) => net.info?.available);
  if (nets.length === 0) return;
  const current = ++widget.run;
  showThumbnail(widget, file);
  widget.root.classList.add('busy');
  setStatus(widget, `Running ${nets.length === 1 ? 'the net' : 'both nets'} on your picture…`, 'busy');
  const strips = nets.map((net) => drawFeatures(widget, net, file, current));
  try {
    const results = await patiently(widget, current, () => predictions(widget, nets, file));
    if (current !== widget.run) return;
    await Promise.all(results.map((result, i) => drawTop5(nets[i], result)));
    setStatus(widget, 'Top-5 ready; computing the feature maps…', 'busy');
    await Promise.all(strips);
    if (current !== widget.run) return;
    setStatus(widget, 'Done.', 'done');
    widget.root.querySelector('[data-features-link]').hidden = false;
  } catch (error) {
    await Promise.all(strips); // settled either way: then nothing redraws after the clearing
    if (current === widget.run) failed(widget, error);
  } finally {
    if (current === widget.run) widget.root.classList.remove('busy');
  }
}

function wireDropzone(widget) {
  const zone = widget.dropzone;
  const over = (event) => {
    event.preventDefault();
    if (!widget.input.disabled) zone.classList.add('dragging');
  };
  zone.addEventListener('dragenter', over);
  zone.addEventListener('dragover', over);
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const file = event.dataTransfer?.files?.[0];
    if (file && !widget.input.disabled) run(widget, file);
  });
}

export function startPredict(root = document.getElementById('predict')) {
  if (!root) return null;
  const widget = {
    root,
    input: root.querySelector('input[type=file]'),
    dropzone: root.querySelector('[data-dropzone]'),
    thumb: root.querySelector('[data-thumb]'),
    status: root.querySelector('[data-upload-status]'),
    nets: [...root.querySelectorAll('[data-net-result]')].map(netOf),
    maxBytes: null,
    thumbUrl: null,
    recheck: null,
    run: 0,
  };
  widget.input.addEventListener('change', () => {
    const file = widget.input.files?.[0];
    if (file) run(widget, file);
    widget.input.value = ''; // choosing the same file again runs it again
  });
  wireDropzone(widget);
  wireSamples(root, widget.input, (file) => run(widget, file), (message) => setStatus(widget, message, 'bad'));
  checkNets(widget);
  return widget;
}
