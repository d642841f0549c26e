"use strict";
// juanji serve: the page. It uses only the JSON API under /api/ (documented in the README), so whatever
// it shows a script can fetch too.

const $ = (id) => document.getElementById(id);
const state = {
  runs: [], run: null, pixels: null, features: null, kernels: {}, chosen: null, channel: null,
  busy: false, pending: false, explainClass: "", metrics: {}, misclassified: [], wrongFilter: null,
};

// ---- talking to the server ------------------------------------------------------------------------
async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error; } catch (e) { /* not JSON: keep the status text */ }
    throw new Error(message);
  }
  return response;
}
const getJSON = async (path, options) => (await api(path, options)).json();
const runPath = (what) => `/api/runs/${encodeURIComponent(state.run.name)}/${what}`;
const postPixels = (what) => getJSON(runPath(what), {
  method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({pixels: state.pixels})});

function showError(where, error) {
  where.innerHTML = "";
  const p = document.createElement("p");
  p.className = "error";
  p.textContent = error.message;
  where.appendChild(p);
}

// ---- colours and painting arrays -----------------------------------------------------------------
const clamp = (v) => Math.max(0, Math.min(1, v));
const gray = (v) => [v * 255, v * 255, v * 255];
const hot = (v) => [255 * clamp(3 * v), 255 * clamp(3 * v - 1), 255 * clamp(3 * v - 2)];
function diverging(v) {                      // −1 blue, 0 white, +1 red
  const t = Math.min(1, Math.abs(v));
  const end = v < 0 ? [33, 102, 172] : [178, 24, 43];
  return end.map((c) => 255 + (c - 255) * t);
}

function minMax(nested) {
  let low = Infinity, high = -Infinity;
  for (const v of nested.flat(Infinity)) { if (v < low) low = v; if (v > high) high = v; }
  return [low, high];
}

// Paint rows (h × w numbers) onto a canvas, colour(value) → [r, g, b]; smooth: bilinear upscaling.
function paint(canvas, rows, colour, smooth = false) {
  const h = rows.length, w = rows[0].length;
  const small = document.createElement("canvas");
  small.width = w; small.height = h;
  const ctx = small.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const [r, g, b] = colour(rows[i][j]);
      image.data.set([r, g, b, 255], 4 * (i * w + j));
    }
  }
  ctx.putImageData(image, 0, 0);
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = smooth;
  out.clearRect(0, 0, canvas.width, canvas.height);
  out.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// An image (C, H, W) in [0, 1], gray or RGB, onto a canvas.
function paintImage(canvas, pixels) {
  if (pixels.length === 1) { paint(canvas, pixels[0], gray); return; }
  const rows = pixels[0].map((row, i) => row.map((_, j) => [0, 1, 2].map((c) => pixels[c][i][j])));
  paint(canvas, rows, (rgb) => rgb.map((v) => v * 255));
}

const scaled = (low, high) => (v) => (high > low ? (v - low) / (high - low) : 0);

// ---- the drawing canvas: its pixels, box-averaged to the model's input size, are the image -------------
const draw = $("draw");
let block = 10;                                   // canvas pixels per input pixel

function resetCanvas() {
  const [, h, w] = state.run.input_shape;
  block = Math.max(1, Math.round(280 / Math.max(h, w)));
  draw.width = w * block; draw.height = h * block;
  const ctx = draw.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, draw.width, draw.height);
}

function canvasPixels() {
  const [c, h, w] = state.run.input_shape;
  const data = draw.getContext("2d").getImageData(0, 0, draw.width, draw.height).data;
  const pixels = [];
  for (let channel = 0; channel < c; channel++) {
    const plane = [];
    for (let i = 0; i < h; i++) {
      const row = [];
      for (let j = 0; j < w; j++) {
        let sum = 0;
        for (let u = 0; u < block; u++) {
          for (let v = 0; v < block; v++) {
            const k = 4 * ((i * block + u) * draw.width + j * block + v);
            sum += c === 1 ? 0.299 * data[k] + 0.587 * data[k + 1] + 0.114 * data[k + 2] : data[k + channel];
          }
        }
        row.push(Math.round(sum / (block * block) / 255 * 1e4) / 1e4);
      }
      plane.push(row);
    }
    pixels.push(plane);
  }
  return pixels;
}

function pixelsToCanvas(pixels) {
  resetCanvas();
  const ctx = draw.getContext("2d");
  pixels[0].forEach((row, i) => row.forEach((_, j) => {
    const rgb = pixels.length === 1 ? [0, 0, 0].map(() => pixels[0][i][j]) : [0, 1, 2].map((c) => pixels[c][i][j]);
    ctx.fillStyle = `rgb(${rgb.map((v) => Math.round(v * 255)).join(",")})`;
    ctx.fillRect(j * block, i * block, block, block);
  }));
}

let stroke = null;
function pointAt(event) {
  const box = draw.getBoundingClientRect();
  return [(event.clientX - box.left) * draw.width / box.width, (event.clientY - box.top) * draw.height / box.height];
}
draw.addEventListener("pointerdown", (event) => {
  draw.setPointerCapture(event.pointerId);
  stroke = pointAt(event);
  $("source").textContent = "Your drawing.";
  drawTo(stroke);
});
draw.addEventListener("pointermove", (event) => { if (stroke) drawTo(pointAt(event)); });
draw.addEventListener("pointerup", () => { stroke = null; refresh(); });

function drawTo(point) {
  const ctx = draw.getContext("2d");
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 2.6 * block; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(...stroke); ctx.lineTo(...point); ctx.stroke();
  stroke = point;
  predictSoon();
}

$("clear").addEventListener("click", () => { resetCanvas(); $("source").textContent = "Draw something."; refresh(); });

// An image file is sent once, to the analysis: the server prepares it as `juanji predict` does, and the page
// keeps the pixels it answers with (not the canvas's re-sample of them).
async function loadImageFile(blob, description) {
  try {
    const result = await getJSON(runPath(analysisPath()), {
      method: "POST", headers: {"Content-Type": blob.type || "application/octet-stream"}, body: blob});
    pixelsToCanvas(result.pixels);
    state.pixels = result.pixels;
    $("source").textContent = description;
    showAnalysis(result);
  } catch (error) { showError($("topk"), error); }
}
$("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) loadImageFile(file, `${file.name}: shorter side scaled to the input size, the centre cut out.`);
  event.target.value = "";
});

// ---- prediction (while drawing: one request at a time, the latest image next) -------------------------
async function predictSoon() {
  if (state.busy) { state.pending = true; return; }
  state.busy = true;
  try {
    state.pixels = canvasPixels();
    showPrediction(await postPixels("predict"));
  } catch (error) {
    showError($("topk"), error);
  } finally {
    state.busy = false;
    if (state.pending) { state.pending = false; predictSoon(); }
  }
}

function showPrediction(result) {
  paintImage($("received"), result.pixels);
  const [low, high] = minMax(result.input);
  const norm = state.run.normalization;
  $("received-note").textContent = norm
    ? `${result.pixels[0].length}×${result.pixels[0][0].length} pixels in [0, 1]; the network gets (x − ${
        norm[0].map((m) => m.toFixed(3)).join("/")}) / ${norm[1].map((s) => s.toFixed(3)).join("/")}: values ${
        low.toFixed(2)} … ${high.toFixed(2)}`
    : `${result.pixels[0].length}×${result.pixels[0][0].length} pixels in [0, 1], fed as they are`;
  const list = $("topk");
  list.innerHTML = "";
  for (const c of result.classes.slice(0, 5)) {
    const item = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(1, 200 * c.probability)}px`;
    item.append(bar, `${c.name} ${(100 * c.probability).toFixed(1)} %`);
    item.dataset.index = c.index;
    list.appendChild(item);
  }
  list.dataset.top = result.classes[0].name;
}

// ---- the analysis: one request per image for the prediction, every layer's maps, saliency and Grad-CAM ----
function analysisPath() {
  const layer = $("gradcam-layer").value;
  return `analyze?class=${encodeURIComponent($("explain-class").value)}${
    layer ? `&layer=${encodeURIComponent(layer)}` : ""}`;
}

// fromCanvas: read the drawing again (after a stroke); else analyse the same pixels (another class or layer).
async function refresh(fromCanvas = true) {
  if (fromCanvas) state.pixels = canvasPixels();
  try { showAnalysis(await postPixels(analysisPath())); } catch (error) { showError($("topk"), error); }
}

function showAnalysis(result) {
  showPrediction(result);
  showInside(result);
  showExplanation(result.explanation);
  showOcclusion(encodeURIComponent($("explain-class").value));
}

// ---- inside: feature maps, a map large beside its kernel and the multiply-accumulate -------------------
function showInside(result) {
  const where = $("layers");
  if (!state.run.layers.length) { where.textContent = "This model is not a Sequential: no layer-by-layer view."; return; }
  state.features = {input: result.input, layers: result.layers};
  where.innerHTML = "";
  state.features.layers.forEach((layer, index) => {
    const row = document.createElement("div");
    row.className = "layer";
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = `${layer.name} ${layer.type} ${layer.shape.join("×")}`;
    const maps = document.createElement("div");
    maps.className = "maps";
    const [low, high] = minMax(layer.maps);
    const cell = Math.max(2, Math.floor(56 / layer.shape[1]));
    layer.maps.forEach((map, k) => {
      const canvas = document.createElement("canvas");
      canvas.width = layer.shape[2] * cell; canvas.height = layer.shape[1] * cell;
      canvas.title = `${layer.name}: map ${k}`;
      canvas.dataset.layer = layer.name; canvas.dataset.map = k;
      paint(canvas, map, (v) => gray(scaled(low, high)(v)));
      canvas.addEventListener("click", () => choose(index, k));
      maps.appendChild(canvas);
    });
    row.append(label, maps);
    where.appendChild(row);
  });
  if (state.chosen) choose(...state.chosen);
}

// What a layer of the chain reads: the previous layer's maps, or the network's input for the first one.
function inputOf(name) {
  const names = state.run.layers.map((l) => l.name);
  const position = names.indexOf(name);
  if (position === 0) return {name: "input", maps: state.features.input};
  const previous = state.features.layers.find((l) => l.name === names[position - 1]);
  return previous ? {name: previous.name, maps: previous.maps} : null;
}

async function choose(index, k) {
  const layer = state.features.layers[index];
  const info = state.run.layers.find((l) => l.name === layer.name);
  state.chosen = [index, k];
  document.querySelectorAll(".maps canvas.chosen").forEach((c) => c.classList.remove("chosen"));
  const canvas = document.querySelector(`.maps canvas[data-layer="${layer.name}"][data-map="${k}"]`);
  if (canvas) canvas.classList.add("chosen");
  $("detail").hidden = false;
  $("detail-title").textContent = `layer ${layer.name} (${layer.type}), map ${k} of ${layer.shape[0]}: ${
    layer.shape[1]}×${layer.shape[2]}`;
  const [low, high] = minMax(layer.maps);
  paint($("detail-map"), layer.maps[k], (v) => gray(scaled(low, high)(v)));
  const isConv = layer.type === "Conv2d";
  let kernel = null;
  if (isConv) {
    try {
      if (!state.kernels[layer.name]) state.kernels[layer.name] = await getJSON(runPath(`kernels/${layer.name}`));
    } catch (error) { showError($("mac"), error); return; }
    kernel = state.kernels[layer.name];
  }
  const source = inputOf(layer.name);
  const perGroup = kernel ? kernel.weight[0].length : 1;
  const group = kernel ? Math.floor(k / (layer.shape[0] / kernel.groups)) : 0;
  const channels = kernel ? Array.from({length: perGroup}, (_, c) => group * perGroup + c) : [k];
  if (state.channel === null || !channels.includes(state.channel)) state.channel = channels[0];
  $("detail-kernel-box").hidden = !kernel;
  $("detail-input-box").hidden = !source;
  const view = {layer, info, kernel, source, k, channels, cell: [0, 0]};
  drawDetail(view);
  showDeconv(layer.name, k);
  $("detail-map").onmousemove = (event) => {
    const box = event.target.getBoundingClientRect();
    const i = Math.min(layer.shape[1] - 1, Math.floor((event.clientY - box.top) / box.height * layer.shape[1]));
    const j = Math.min(layer.shape[2] - 1, Math.floor((event.clientX - box.left) / box.width * layer.shape[2]));
    if (i !== view.cell[0] || j !== view.cell[1]) { view.cell = [i, j]; drawDetail(view); }
  };
}

// ZFNet's deconvnet: the map's strongest activation projected back to the pixels (gray 0, as in the paper).
async function showDeconv(name, k) {
  const note = $("detail-deconv-note");
  let result;
  try {
    result = await postPixels(`deconv?layer=${encodeURIComponent(name)}&map=${k}`);
  } catch (error) { showError(note, error); return; }
  const [low, high] = minMax(result.projection);
  const m = Math.max(Math.abs(low), Math.abs(high)) || 1;
  const plane = result.projection[0].map((row, i) => row.map((_, j) =>
    result.projection.reduce((sum, channel) => sum + channel[i][j], 0) / result.projection.length));
  paint($("detail-deconv"), plane, (v) => gray(clamp(0.5 + v / (2 * m))));
  note.textContent = `deconvnet: its strongest cell (${result.position.join(", ")}) projected to the pixels (gray 0)`;
}

// The input positions output (i, j) reads: rows i·stride − top + u·dilation, columns alike (null: padding).
function windowOf(info, i, j, height, width) {
  const w = info.window;
  const rows = [], cols = [];
  for (let u = 0; u < w.kernel[0]; u++) rows.push(i * w.stride[0] - w.padding[0] + u * w.dilation[0]);
  for (let v = 0; v < w.kernel[1]; v++) cols.push(j * w.stride[1] - w.padding[1] + v * w.dilation[1]);
  return rows.map((r) => cols.map((c) => (r >= 0 && r < height && c >= 0 && c < width ? [r, c] : null)));
}

const describe = (source, c) => (source.name === "input" ? `the input, channel ${c}` : `layer ${source.name}, map ${c}`);
const fmt = (v) => (v === null ? "pad 0" : (Math.abs(v) < 5e-5 ? "0" : v.toFixed(4)));

function table(caption, rows) {
  const t = document.createElement("table");
  const cap = document.createElement("caption");
  cap.textContent = caption;
  t.appendChild(cap);
  for (const row of rows) {
    const tr = t.insertRow();
    for (const v of row) tr.insertCell().textContent = typeof v === "number" || v === null ? fmt(v) : v;
  }
  return t;
}

function drawDetail(view) {
  const {layer, info, kernel, source, k, cell: [i, j]} = view;
  const y = layer.maps[k][i][j];
  const mac = $("mac");
  mac.innerHTML = "";
  const inputChannel = kernel ? state.channel : k;
  if (source) {
    const plane = source.maps[inputChannel];
    const [low, high] = minMax(source.maps);
    paint($("detail-input"), plane, (v) => gray(scaled(low, high)(v)));
    $("detail-input-note").textContent = `its input: ${describe(source, inputChannel)}`;
  }
  // mark the output cell on the map, and its window on the input
  const mark = (canvas, r0, c0, rows, cols, h, w, colour) => {
    const ctx = canvas.getContext("2d");
    ctx.strokeStyle = colour; ctx.lineWidth = 2;
    ctx.strokeRect(c0 * canvas.width / w, r0 * canvas.height / h, cols * canvas.width / w, rows * canvas.height / h);
  };
  const [low, high] = minMax(layer.maps);
  paint($("detail-map"), layer.maps[k], (v) => gray(scaled(low, high)(v)));
  mark($("detail-map"), i, j, 1, 1, layer.shape[1], layer.shape[2], "#ff7043");
  const line = document.createElement("p");
  if (!source || !info.window && layer.type !== "ReLU") {
    line.textContent = `y[${k}, ${i}, ${j}] = ${fmt(y)}`;
    mac.appendChild(line);
    return;
  }
  const plane = source.maps[inputChannel];
  const height = plane.length, width = plane[0].length;
  if (!info.window) {                       // elementwise: ReLU
    const x = plane[i][j];
    mark($("detail-input"), i, j, 1, 1, height, width, "#ff7043");
    line.textContent = `y[${k}, ${i}, ${j}] = max(0, x[${k}, ${i}, ${j}]) = max(0, ${fmt(x)}) = ${fmt(y)}`;
    mac.appendChild(line);
    return;
  }
  const positions = windowOf(info, i, j, height, width);
  const w = info.window;
  mark($("detail-input"), i * w.stride[0] - w.padding[0], j * w.stride[1] - w.padding[1],
       (w.kernel[0] - 1) * w.dilation[0] + 1, (w.kernel[1] - 1) * w.dilation[1] + 1, height, width, "#ff7043");
  const windowValues = (c) => positions.map((row) => row.map((p) => (p ? source.maps[c][p[0]][p[1]] : null)));
  if (!kernel) {                            // pooling: max or mean of the window
    const values = windowValues(inputChannel).flat().filter((v) => v !== null);
    const op = layer.type.startsWith("Max") ? "max" : "mean";
    mac.appendChild(table(`window of ${describe(source, inputChannel)}`, windowValues(inputChannel)));
    line.textContent = `y[${k}, ${i}, ${j}] = ${op} of the window = ${fmt(op === "max" ? Math.max(...values) :
      values.reduce((a, b) => a + b, 0) / values.length)}; the network: ${fmt(y)}`;
    mac.appendChild(line);
    return;
  }
  // convolution: y = b + Σ_c Σ_uv w[k, c, u, v] · x[c, window(u, v)]   (the seeds' formula)
  const sums = view.channels.map((c, local) => {
    const x = windowValues(c);
    let sum = 0;
    kernel.weight[k][local].forEach((row, u) => row.forEach((wv, v) => { sum += wv * (x[u][v] ?? 0); }));
    return sum;
  });
  const local = view.channels.indexOf(inputChannel);
  const weights = kernel.weight[k][local];
  const [wlow, whigh] = minMax(kernel.weight);
  const m = Math.max(Math.abs(wlow), Math.abs(whigh)) || 1;
  paint($("detail-kernel"), weights, (v) => diverging(v / m));
  const x = windowValues(inputChannel);
  mac.append(table(`x: window of ${describe(source, inputChannel)}`, x),
             table(`w: kernel ${k}, channel ${inputChannel}`, weights),
             table("w · x", weights.map((row, u) => row.map((wv, v) => wv * (x[u][v] ?? 0)))));
  const bias = kernel.bias ? kernel.bias[k] : 0;
  const total = sums.reduce((a, b) => a + b, 0) + bias;
  const choices = document.createElement("p");
  choices.append(`y[${k}, ${i}, ${j}] = b + Σ_c Σ_uv w·x = ${fmt(bias)}`);
  view.channels.forEach((c, n) => {
    const link = document.createElement("a");
    link.href = "#"; link.textContent = `${fmt(sums[n])}`; link.title = `channel ${c}: show its window and kernel`;
    link.addEventListener("click", (event) => { event.preventDefault(); state.channel = c; drawDetail(view); });
    choices.append(" + ", c === inputChannel ? Object.assign(document.createElement("b"), {textContent: fmt(sums[n])})
                                             : link);
  });
  choices.append(` = ${fmt(total)}   (the network computed ${fmt(y)})`);
  mac.appendChild(choices);
}

// ---- kernels ------------------------------------------------------------------------------------------
async function showKernels() {
  const name = $("kernel-layer").value;
  const where = $("kernel-grid");
  if (!name) { where.textContent = "This model has no 2-D convolution."; return; }
  try {
    if (!state.kernels[name]) state.kernels[name] = await getJSON(runPath(`kernels/${name}`));
  } catch (error) { showError(where, error); return; }
  const weight = state.kernels[name].weight;
  const [low, high] = minMax(weight);
  const m = Math.max(Math.abs(low), Math.abs(high)) || 1;
  const [kh, kw] = [weight[0][0].length, weight[0][0][0].length];
  const cell = Math.max(2, Math.floor(60 / Math.max(kh, kw)));
  // one row per kernel and one column per input channel; kernels of a single channel side by side instead
  const single = weight[0].length === 1;
  const [rows, columns] = single ? [1, weight.length] : [weight.length, weight[0].length];
  const canvas = document.createElement("canvas");
  canvas.width = columns * (kw + 1) * cell; canvas.height = rows * (kh + 1) * cell;
  const ctx = canvas.getContext("2d");
  weight.forEach((kernel, k) => kernel.forEach((plane, c) => plane.forEach((row, u) => row.forEach((v, x) => {
    const [r, col] = single ? [0, k] : [k, c];
    ctx.fillStyle = `rgb(${diverging(v / m).map(Math.round).join(",")})`;
    ctx.fillRect((col * (kw + 1) + x) * cell, (r * (kh + 1) + u) * cell, cell, cell);
  }))));
  where.innerHTML = "";
  where.appendChild(canvas);
}
$("kernel-layer").addEventListener("change", showKernels);

// ---- why this class: saliency and Grad-CAM --------------------------------------------------------
function showExplanation(result) {
  paint($("saliency"), result.saliency, hot);
  if (result.gradcam) {
    overlayHeat($("gradcam"), result.gradcam_pixels, minMax(result.gradcam)[1]);
    $("gradcam-note").textContent = `Grad-CAM of “${result.name}” at layer ${result.gradcam_layer}: ReLU(Σ_k α_k A_k), ${
      result.gradcam.length}×${result.gradcam[0].length} cells ${result.gradcam_centred
        ? "placed on their receptive fields' centres" : "stretched over the image"}`;
  } else {
    $("gradcam-note").textContent = "Grad-CAM needs a Sequential model";
  }
}
// A heat map laid over the image: the image first, then the map scaled by ``high``, 60 % opaque.
function overlayHeat(canvas, values, high) {
  paintImage(canvas, state.pixels);
  const overlay = document.createElement("canvas");
  overlay.width = canvas.width; overlay.height = canvas.height;
  paint(overlay, values, (v) => hot(high > 0 ? v / high : 0));
  const ctx = canvas.getContext("2d");
  ctx.globalAlpha = 0.6; ctx.drawImage(overlay, 0, 0); ctx.globalAlpha = 1;
}
$("explain-class").addEventListener("change", () => refresh(false));
$("gradcam-layer").addEventListener("change", () => refresh(false));

// Occlusion: how far p(class) drops with a square of the mean pixel over each place, drawn over the image.
async function showOcclusion(chosen) {
  let result;
  try { result = await postPixels(`occlusion?class=${chosen}`); } catch (error) {
    showError($("occlusion-note"), error); return;
  }
  overlayHeat($("occlusion"), result.drop, minMax(result.drop)[1]);
  const lowest = Math.min(...result.map.flat());
  $("occlusion-note").textContent = `occlusion of “${result.name}”: p = ${result.probability.toFixed(3)}, down to ${
    lowest.toFixed(3)} with a ${result.size}×${result.size} square of the mean pixel (every ${result.stride} pixels)`;
}

// ---- training: curves of every run (polled: live while juanji train writes), confusion, mistakes ----------
const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];

function chart(svg, series) {
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height"), pad = 34;
  const all = series.flatMap((s) => s.points);
  svg.innerHTML = "";
  if (!all.length) return;
  const xmax = Math.max(...all.map((p) => p[0]), 1);
  let [ylow, yhigh] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (yhigh === ylow) { yhigh += 0.5; ylow -= 0.5; }
  const X = (x) => pad + (W - pad - 8) * x / xmax, Y = (y) => H - pad + 10 - (H - pad) * (y - ylow) / (yhigh - ylow);
  const ns = "http://www.w3.org/2000/svg";
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [a, v] of Object.entries(attrs)) e.setAttribute(a, v);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
  };
  add("line", {x1: pad, y1: H - pad + 10, x2: W - 8, y2: H - pad + 10, stroke: "#999"});
  add("line", {x1: pad, y1: 10, x2: pad, y2: H - pad + 10, stroke: "#999"});
  add("text", {x: 2, y: 14}, yhigh.toFixed(3));
  add("text", {x: 2, y: H - pad + 10}, ylow.toFixed(3));
  add("text", {x: W / 2, y: H - 4}, "epoch");
  add("text", {x: W - 20, y: H - pad + 22}, String(xmax));
  for (const s of series) {
    if (!s.points.length) continue;
    add("polyline", {points: s.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" "), fill: "none",
                     stroke: s.colour, "stroke-width": 2, "stroke-dasharray": s.dashed ? "5 3" : ""});
    for (const p of s.points) add("circle", {cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: s.colour});
  }
}

async function pollMetrics() {
  try {
    const fetched = await Promise.all(state.runs.map((run) =>
      getJSON(`/api/runs/${encodeURIComponent(run.name)}/metrics`)));
    const text = JSON.stringify(fetched);
    if (text !== state.metricsText) {
      state.metricsText = text;
      for (const [metric, svg] of [["loss", $("loss-chart")], ["accuracy", $("accuracy-chart")]]) {
        const series = state.runs.flatMap((run, r) => ["train", "test"].map((split) => ({
          colour: COLOURS[r % COLOURS.length], dashed: split === "train",
          points: fetched[r].epochs.map((m) => [m.epoch, m[`${split}_${metric}`]]).filter((p) => p[1] !== undefined),
        })));
        chart(svg, series);
      }
      const legend = $("legend");
      legend.innerHTML = "";
      state.runs.forEach((run, r) => {
        const span = document.createElement("span");
        span.style.color = COLOURS[r % COLOURS.length];
        const last = fetched[r].epochs.at(-1);
        span.textContent = `■ ${run.name} (${fetched[r].epochs.length} epochs${
          last ? `, test accuracy ${(100 * last.test_accuracy).toFixed(2)} %` : ""})   `;
        legend.appendChild(span);
      });
      legend.append("solid: test, dashed: training. Updates while juanji train writes metrics.jsonl.");
    }
  } catch (error) { showError($("legend"), error); }
}

async function showConfusion() {
  const button = $("load-confusion");
  button.disabled = true; button.textContent = "evaluating…";
  let result;
  try { result = await getJSON(runPath("confusion")); } catch (error) { showError($("misclassified"), error); return; }
  button.hidden = true;
  $("accuracy").textContent = `(accuracy ${(100 * result.accuracy).toFixed(2)} % on ${result.count} test images)`;
  const t = $("confusion");
  t.innerHTML = "";
  const head = t.insertRow();
  head.appendChild(document.createElement("th")).textContent = "true ↓ predicted →";
  result.classes.forEach((_, j) => { head.appendChild(document.createElement("th")).textContent = j; });
  result.matrix.forEach((row, i) => {
    const tr = t.insertRow();
    const name = tr.appendChild(document.createElement("th"));
    name.className = "rowname"; name.textContent = `${i} ${result.classes[i]}`;
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const td = tr.insertCell();
      const f = count / total;
      td.textContent = count;
      td.style.background = i === j ? `rgba(21, 101, 192, ${f})` : `rgba(198, 40, 40, ${Math.min(1, 4 * f)})`;
      td.style.color = f > 0.5 ? "#fff" : "#222";
      td.title = `${result.classes[i]} predicted as ${result.classes[j]}: ${count}`;
      td.addEventListener("click", () => { state.wrongFilter = i === j ? null : [i, j]; showMistakes(result); });
    });
  });
  showMistakes(result);
}

function showMistakes(result) {
  const where = $("misclassified");
  where.innerHTML = "";
  const filter = state.wrongFilter;
  const shown = result.misclassified.filter((m) => !filter || (m.true === filter[0] && m.predicted === filter[1]));
  $("wrong-filter").textContent = filter
    ? `(${result.classes[filter[0]]} taken for ${result.classes[filter[1]]}: ${shown.length} of the first ${
        result.misclassified.length})`
    : `(the first ${result.misclassified.length}; click one to look inside, a matrix cell to filter)`;
  for (const m of shown.slice(0, 60)) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = runPath(`test-images/${m.index}`);
    img.alt = `test image ${m.index}`;
    const caption = document.createElement("figcaption");
    caption.textContent = `#${m.index} ${result.classes[m.true]} → ${result.classes[m.predicted]}`;
    figure.append(img, caption);
    figure.addEventListener("click", async () => {
      let blob;
      try { blob = await (await api(runPath(`test-images/${m.index}`))).blob(); } catch (error) {
        showError($("topk"), error); return;
      }
      await loadImageFile(blob, `Test image #${m.index}: a ${result.classes[m.true]}, predicted ${
        result.classes[m.predicted]}.`);
      $("try").scrollIntoView({behavior: "smooth"});
    });
    where.appendChild(figure);
  }
}
$("load-confusion").addEventListener("click", showConfusion);

// ---- choosing a run ------------------------------------------------------------------------------------
function selectRun(name) {
  state.run = state.runs.find((r) => r.name === name);
  state.features = null; state.chosen = null; state.channel = null; state.wrongFilter = null; state.kernels = {};
  const run = state.run;
  $("run-info").textContent = `${run.model}, ${run.parameters.toLocaleString("en")} parameters, input ${
    run.input_shape.join("×")}, best.npz of epoch ${run.epoch}${run.test_accuracy != null
      ? ` (test accuracy ${(100 * run.test_accuracy).toFixed(2)} %)` : ""}`;
  const classes = $("explain-class");
  classes.innerHTML = "";
  classes.appendChild(new Option("the predicted class", ""));
  run.classes.forEach((c, i) => classes.appendChild(new Option(`${i} ${c}`, String(i))));
  const camLayers = $("gradcam-layer");
  camLayers.innerHTML = "";
  camLayers.appendChild(new Option("the last with maps", ""));
  run.layers.filter((l) => l.shape.length === 3).forEach((l) =>
    camLayers.appendChild(new Option(`${l.name} ${l.type} ${l.shape.join("×")}`, l.name)));
  const layers = $("kernel-layer");
  layers.innerHTML = "";
  run.kernels.forEach((k) => layers.appendChild(new Option(`${k.name} ${k.shape.join("×")}`, k.name)));
  $("detail").hidden = true;
  $("confusion").innerHTML = ""; $("misclassified").innerHTML = ""; $("accuracy").textContent = "";
  $("wrong-filter").textContent = "";
  const button = $("load-confusion");
  button.hidden = false; button.disabled = false; button.textContent = "Evaluate on the test set";
  resetCanvas();
  refresh();
  showKernels();
}

async function start() {
  state.runs = (await getJSON("/api/runs")).runs;
  const select = $("run");
  state.runs.forEach((run) => select.appendChild(new Option(run.name, run.name)));
  select.addEventListener("change", () => selectRun(select.value));
  selectRun(state.runs[0].name);
  pollMetrics();
  setInterval(pollMetrics, 3000);
}
start();
