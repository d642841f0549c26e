// Inside the network: every layer's feature maps for the image; one map large beside its input, its kernel and
// the deconvnet projection of its strongest cell; and, under the cursor, how the layer computed that one cell
// (for a convolution the multiply-accumulate y = b + Σ_c Σ_uv w·x, with the actual numbers).
import {kernelOf, postPixels} from "./api.js";
import {$, element, showError} from "./page.js";
import {clamp, diverging, gray, grayFor, largest, paint} from "./paint.js";

// Each layer's maps are drawn about this many screen pixels tall: a 28×28 map at 2 screen pixels per value …
const MAP_HEIGHT = 56;
// … and never under this many screen pixels per value, so that a large map's values stay visible.
const MIN_CELL = 2;
// The outline of the cell under the cursor and of the window it reads, in canvas pixels: 2 stands out of a
// map drawn at several pixels per value. Its colour is a chosen map's border (--mark in style.css).
const MARK_WIDTH = 2;
// Numbers in the arithmetic: 4 decimals, enough to see our sum agree with the network's value (the API sends
// 6), few enough to keep the tables narrow.
const DECIMALS = 4;

let run = null;            // the run shown: the order of its layers and their windows (GET /api/runs)
let image = null;          // the image analysed: its pixels, the network's input and every layer's maps
let chosen = null;         // the map shown large, {name, map}; kept when the image changes
let channel = null;        // the input channel whose window and kernel slice the arithmetic shows

// A new run: nothing chosen yet.
export function resetInside(newRun) {
  run = newRun;
  image = null; chosen = null; channel = null;
  $("detail").hidden = true;
}

// An answer of /analyze (its input and layers), for the pixels it was asked about.
export function showInside(result, pixels) {
  const where = $("layers");
  if (!run.layers.length) { where.textContent = "This model is not a Sequential: no layer-by-layer view."; return; }
  image = {pixels, input: result.input, layers: result.layers};
  where.replaceChildren(...image.layers.map(layerRow));
  if (chosen) choose(chosen.name, chosen.map);
}

// One layer: its name, type and shape, then every map on the layer's own gray scale, each one clickable.
function layerRow(layer) {
  const [, h, w] = layer.shape;
  const cell = Math.max(MIN_CELL, Math.floor(MAP_HEIGHT / h));
  const colour = grayFor(layer.maps);
  const maps = element("div", "maps");
  layer.maps.forEach((map, k) => {
    const canvas = element("canvas");
    canvas.width = w * cell; canvas.height = h * cell;
    canvas.title = `${layer.name}: map ${k}`;
    canvas.dataset.layer = layer.name; canvas.dataset.map = k;
    paint(canvas, map, colour);
    canvas.addEventListener("click", () => choose(layer.name, k));
    maps.appendChild(canvas);
  });
  const row = element("div", "layer");
  row.append(element("div", "label", `${layer.name} ${layer.type} ${layer.shape.join("×")}`), maps);
  return row;
}

// Map k of a layer, large, with what made it.
async function choose(name, k) {
  const layer = image.layers.find((l) => l.name === name);
  chosen = {name, map: k};
  document.querySelectorAll(".maps canvas.chosen").forEach((c) => c.classList.remove("chosen"));
  document.querySelector(`.maps canvas[data-layer="${name}"][data-map="${k}"]`)?.classList.add("chosen");
  $("detail").hidden = false;
  $("detail-title").textContent = `layer ${name} (${layer.type}), map ${k} of ${layer.shape[0]}: ${
    layer.shape[1]}×${layer.shape[2]}`;
  let kernel = null;
  if (layer.type === "Conv2d") {
    try { kernel = await kernelOf(run, name); } catch (error) { showError($("mac"), error); return; }
  }
  const source = inputOf(name);
  const channels = channelsRead(layer, kernel, k);
  if (channel === null || !channels.includes(channel)) channel = channels[0];
  $("detail-kernel-box").hidden = !kernel;
  $("detail-input-box").hidden = !source;
  const layerWindow = run.layers.find((l) => l.name === name).window;
  const view = {layer, layerWindow, kernel, source, k, channels, cell: [0, 0]};
  drawDetail(view);
  showDeconv(name, k);
  $("detail-map").onmousemove = (event) => followCursor(event, view);
}

// What a layer reads: the previous layer's maps, or the network's input for the first one (null if unknown).
function inputOf(name) {
  const names = run.layers.map((l) => l.name);
  const position = names.indexOf(name);
  if (position === 0) return {name: "input", maps: image.input};
  const previous = image.layers.find((l) => l.name === names[position - 1]);
  return previous ? {name: previous.name, maps: previous.maps} : null;
}

// The input channels map k reads: a convolution's weight is (K, C/groups, kh, kw), so map k reads the
// C/groups channels of its group; a layer without a kernel (ReLU, pooling) reads channel k alone.
function channelsRead(layer, kernel, k) {
  if (!kernel) return [k];
  const perGroup = kernel.weight[0].length;
  const group = Math.floor(k / (layer.shape[0] / kernel.groups));
  return Array.from({length: perGroup}, (_, c) => group * perGroup + c);
}

// The cell under the cursor on the large map.
function followCursor(event, view) {
  const box = event.target.getBoundingClientRect();
  const [, h, w] = view.layer.shape;
  const i = Math.min(h - 1, Math.floor((event.clientY - box.top) / box.height * h));
  const j = Math.min(w - 1, Math.floor((event.clientX - box.left) / box.width * w));
  if (i !== view.cell[0] || j !== view.cell[1]) { view.cell = [i, j]; drawDetail(view); }
}

// ZFNet's deconvnet: the map's strongest activation projected back to the pixels (gray 0, as in the paper).
async function showDeconv(name, k) {
  const note = $("detail-deconv-note");
  let result;
  try {
    result = await postPixels(run, `deconv?layer=${encodeURIComponent(name)}&map=${k}`, image.pixels);
  } catch (error) { showError(note, error); return; }
  const m = largest(result.projection);
  const channels = result.projection;
  const plane = channels[0].map((row, i) => row.map((_, j) => channels.reduce((sum, c) => sum + c[i][j], 0) / channels.length));
  paint($("detail-deconv"), plane, (v) => gray(clamp(0.5 + v / (2 * m))));
  note.textContent = `deconvnet: its strongest cell (${result.position.join(", ")}) projected to the pixels (gray 0)`;
}

// ---- the detail: the map, its input with the window, and the arithmetic of one cell ------------------------
function drawDetail(view) {
  const {layer, source, k, cell: [i, j]} = view;
  paint($("detail-map"), layer.maps[k], grayFor(layer.maps));
  outline($("detail-map"), [i], [j], layer.shape.slice(1));
  if (source) {
    paint($("detail-input"), source.maps[channel], grayFor(source.maps));
    $("detail-input-note").textContent = `its input: ${describe(source, channel)}`;
  }
  $("mac").replaceChildren(...arithmetic(view));
}

// How the layer computed y[k, i, j]: a convolution's sum, a pooling's max or mean, a ReLU's max(0, x).
function arithmetic(view) {
  const {layer, layerWindow, kernel, source, k, cell: [i, j]} = view;
  const y = layer.maps[k][i][j];
  if (source && layerWindow) {
    const lines = [windowLines(layerWindow, 0, i), windowLines(layerWindow, 1, j)];
    outline($("detail-input"), ...lines, planeShape(source));
    return kernel ? convolution(view, lines) : pooling(view, lines);
  }
  if (source && layer.type === "ReLU") {
    const x = source.maps[k][i][j];
    outline($("detail-input"), [i], [j], planeShape(source));
    return [element("p", "", `y[${k}, ${i}, ${j}] = max(0, x[${k}, ${i}, ${j}]) = max(0, ${fmt(x)}) = ${fmt(y)}`)];
  }
  return [element("p", "", `y[${k}, ${i}, ${j}] = ${fmt(y)}`)];
}

// The input rows (axis 0) or columns (axis 1) that output row or column i reads, from the window the server
// describes (GET /api/runs layers[].window, as views.window documents it): i·stride − padding + u·dilation,
// u = 0 … kernel − 1. Positions outside the input read the padding.
function windowLines({kernel, stride, padding, dilation}, axis, i) {
  return Array.from({length: kernel[axis]}, (_, u) => i * stride[axis] - padding[axis] + u * dilation[axis]);
}

// The window's values in one input plane: rows × columns, null where it reads the padding.
function windowValues(plane, [rows, columns]) {
  const inside = (r, c) => r >= 0 && r < plane.length && c >= 0 && c < plane[0].length;
  return rows.map((r) => columns.map((c) => (inside(r, c) ? plane[r][c] : null)));
}

const planeShape = (source) => [source.maps[0].length, source.maps[0][0].length];

// Outline, on a canvas showing an h × w plane, the cells from the first to the last of rows and columns.
function outline(canvas, rows, columns, [h, w]) {
  const ctx = canvas.getContext("2d");
  ctx.strokeStyle = getComputedStyle(canvas).getPropertyValue("--mark").trim(); ctx.lineWidth = MARK_WIDTH;
  const [sy, sx] = [canvas.height / h, canvas.width / w];
  ctx.strokeRect(columns[0] * sx, rows[0] * sy, (columns.at(-1) - columns[0] + 1) * sx, (rows.at(-1) - rows[0] + 1) * sy);
}

function pooling({layer, source, k, cell: [i, j]}, lines) {
  const x = windowValues(source.maps[channel], lines);
  const values = x.flat().filter((v) => v !== null);
  const isMax = layer.type.startsWith("Max");
  const value = isMax ? Math.max(...values) : values.reduce((a, b) => a + b, 0) / values.length;
  return [table(`window of ${describe(source, channel)}`, x),
          element("p", "", `y[${k}, ${i}, ${j}] = ${isMax ? "max" : "mean"} of the window = ${fmt(value)}; the network: ${
            fmt(layer.maps[k][i][j])}`)];
}

// y[k, i, j] = b[k] + Σ_c Σ_uv w[k, c, u, v] · x[c, window(u, v)]   (the seeds' formula), one term per channel;
// the tables show the chosen channel's window, kernel slice and products.
function convolution(view, lines) {
  const {kernel, source, k, channels} = view;
  const weights = (c) => kernel.weight[k][channels.indexOf(c)];
  const products = (c) => {
    const x = windowValues(source.maps[c], lines);
    return weights(c).map((row, u) => row.map((w, v) => w * (x[u][v] ?? 0)));
  };
  const sums = channels.map((c) => products(c).flat().reduce((a, b) => a + b, 0));
  const m = largest(kernel.weight);
  paint($("detail-kernel"), weights(channel), (v) => diverging(v / m));
  return [table(`x: window of ${describe(source, channel)}`, windowValues(source.maps[channel], lines)),
          table(`w: kernel ${k}, channel ${channel}`, weights(channel)),
          table("w · x", products(channel)),
          sumLine(view, sums)];
}

// "y[k, i, j] = b + Σ_c Σ_uv w·x = b + term + term … = ours (the network computed y)"; a term opens its channel.
function sumLine(view, sums) {
  const {layer, kernel, k, channels, cell: [i, j]} = view;
  const bias = kernel.bias ? kernel.bias[k] : 0;
  const line = element("p", "", `y[${k}, ${i}, ${j}] = b + Σ_c Σ_uv w·x = ${fmt(bias)}`);
  channels.forEach((c, n) => {
    if (c === channel) { line.append(" + ", element("b", "", fmt(sums[n]))); return; }
    const link = element("a", "", fmt(sums[n]));
    link.href = "#"; link.title = `channel ${c}: show its window and kernel`;
    link.addEventListener("click", (event) => { event.preventDefault(); channel = c; drawDetail(view); });
    line.append(" + ", link);
  });
  const total = sums.reduce((a, b) => a + b, bias);
  line.append(` = ${fmt(total)}   (the network computed ${fmt(layer.maps[k][i][j])})`);
  return line;
}

const describe = (source, c) => (source.name === "input" ? `the input, channel ${c}` : `layer ${source.name}, map ${c}`);

// A number with DECIMALS decimals ("0" for what rounds to 0, not "-0.0000"); null is the padding's 0.
function fmt(v) {
  if (v === null) return "pad 0";
  return Math.abs(v) < 0.5 * 10 ** -DECIMALS ? "0" : v.toFixed(DECIMALS);
}

function table(caption, rows) {
  const t = element("table");
  t.appendChild(element("caption", "", caption));
  for (const row of rows) {
    const tr = t.insertRow();
    for (const v of row) tr.insertCell().textContent = fmt(v);
  }
  return t;
}
