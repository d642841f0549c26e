// Inside the network: every layer's feature maps for the image, each layer with its colour bar; one map large
// beside its input, its kernel and the deconvnet projection of its strongest cell; and, under the cursor, how the
// layer computed that one cell with the network's numbers: a convolution's multiply-accumulate
// y = b + Σ_c Σ_uv w·x, a pooling's window, a batch norm's (x − μ)/σ·γ + β, a residual block's F(x) + shortcut,
// a concatenation's "channel c of input i". The input map is shown only where the cell reads one map of it.
// After the maps, the classifier's layers of numbers (F,), each a strip: a Linear unit's y_j = b_j + Σ_i w_ji·x_i
// with its largest terms, and the softmax from the last layer's scores to the probabilities. The arrow keys move
// the cell on the large map, and the step control plays it through the cells, the arithmetic following.
import {kernelOf, linearOf, postPixels} from "./api.js";
import {t} from "./i18n.js";
import {$, arrow, element, keyboardGroup, presses, showError} from "./page.js";
import {clamp, diverging, gray, grayFor, largest, minMax, paint, showScale} from "./paint.js";
import {softmax} from "./softmax.js";

// Each layer's maps are drawn about this many screen pixels tall: a 28×28 map at 2 screen pixels per value …
const MAP_HEIGHT = 56;
// … and never under this many screen pixels per value, so that a large map's values stay visible.
const MIN_CELL = 2;
// A layer of 1×1 maps (after global pooling) is one strip about this many screen pixels long, a cell per map,
// this tall, and each cell between these widths.
const STRIP_LENGTH = 384, STRIP_HEIGHT = 16, STRIP_CELL = [2, 16];
// The outline of the cell under the cursor and of the window it reads, in canvas pixels: 2 stands out of a
// map drawn at several pixels per value. Its colour is a chosen map's border (--mark in style.css).
const MARK_WIDTH = 2;
// Numbers in the arithmetic: 4 decimals, enough to see our sum agree with the network's value (the API sends
// 6), few enough to keep the tables narrow.
const DECIMALS = 4;
// The step control moves the cell once every STEP_MS: time to read the window and its sum before the next.
const STEP_MS = 800;
// A layer of numbers is shown in the detail as a strip this many canvas pixels high, and so are its input and
// a Linear unit's weights.
const UNIT_HEIGHT = 24;
// A Linear unit's terms w·x listed one by one: the TERMS largest |w·x| (the others summed into one number) …
const TERMS = 8;
// … and the softmax panel's classes: the CLASSES most probable (all of them in Σ).
const CLASSES = 10;

let run = null;            // the run shown: the order of its layers and their windows (GET /api/runs)
let image = null;          // the image analysed: its pixels, the network's input and every layer's maps
let chosen = null;         // the map shown large, {name, map}; kept when the image changes
let channel = null;        // the input channel whose window and kernel slice the arithmetic shows
let chooseAsked = 0;       // the number of the latest map chosen: a late answer about an older one is dropped
let deconvAsked = 0;       // … and of the latest deconvnet projection asked for
let stepping = null;       // the step control's timer while it plays

// A new run: nothing chosen yet.
export function resetInside(newRun) {
  run = newRun;
  image = null; chosen = null; channel = null;
  pause();
  $("detail").hidden = true;
  $("softmax").hidden = true;
}

// An answer of /analyze (its input, layers of maps and of numbers, classes), for the pixels it was asked about.
export function showInside(result, pixels) {
  showSoftmax(result.classes);
  const where = $("layers");
  if (!run.layers.length) { where.textContent = t("inside.notSequential"); return; }
  image = {pixels, input: result.input, layers: result.layers, vectors: result.vectors, parts: new Map()};
  const shown = [...image.layers, ...image.vectors];
  where.replaceChildren(...run.layers.map((l) => shown.find((s) => s.name === l.name)).filter(Boolean).map(layerRow));
  if (chosen) choose(chosen.name, chosen.map);
}

// One layer: its name, type and shape over its colour bar, then every map on the layer's own gray scale, each
// one clickable (and for the keyboard one tab stop, arrows and Enter); 1×1 maps, and a layer's numbers (F,), as
// one strip.
function layerRow(layer) {
  const [, h, w] = layer.shape;
  const colour = grayFor(layer.values ?? layer.maps);
  const maps = element("div", "maps");
  const cell = Math.max(MIN_CELL, Math.floor(MAP_HEIGHT / h));
  const oneStrip = Boolean(layer.values) || (h === 1 && w === 1);
  if (oneStrip) maps.append(strip(layer, colour));
  else layer.maps.forEach((map, k) => {
    const canvas = element("canvas");
    canvas.width = w * cell; canvas.height = h * cell;
    const [low, high] = minMax(map);
    const range = low === 0 && high === 0 ? t("scale.allZero") : `${fmt(low)} … ${fmt(high)}`;
    canvas.title = t("map.label", {layer: layer.name, map: k, range});
    canvas.setAttribute("aria-label", canvas.title);
    canvas.setAttribute("role", "button");
    canvas.dataset.layer = layer.name; canvas.dataset.map = k;
    paint(canvas, map, colour);
    canvas.addEventListener("click", () => choose(layer.name, k));
    maps.appendChild(canvas);
  });
  if (!oneStrip) keyboardGroup([...maps.children]);
  const label = element("div", "label", `${layer.name} ${layer.type} ${layer.shape.join("×")}`);
  const scale = element("div");
  showScale(scale, colour, minMax(layer.values ?? layer.maps), "");
  label.append(scale);
  const row = element("div", "layer");
  row.append(label, maps);
  return row;
}

// C maps of 1×1 as one canvas, a cell per map: C values side by side, not C tiles of one value each; a layer's F
// numbers alike. For the keyboard a slider: the arrow keys choose a map (a number), Enter or Space shows it.
function strip(layer, colour) {
  const values = layer.values ?? layer.maps.map((map) => map[0][0]);
  const count = values.length;
  const words = (k) => ({layer: layer.name, map: k, unit: k, count, value: fmt(values[k])});
  const cell = Math.min(STRIP_CELL[1], Math.max(STRIP_CELL[0], Math.floor(STRIP_LENGTH / count)));
  const canvas = element("canvas", "strip");
  canvas.width = count * cell; canvas.height = STRIP_HEIGHT;
  canvas.dataset.layer = layer.name; canvas.dataset.strip = count;
  paint(canvas, [values], colour);
  const mapAt = (event) => Math.max(0, Math.min(count - 1, Math.floor(event.offsetX / cell)));
  canvas.addEventListener("mousemove", (event) => {
    const k = mapAt(event);
    canvas.title = layer.values ? t("units.label", words(k)) : t("strip.label", words(k));
  });
  canvas.addEventListener("click", (event) => choose(layer.name, mapAt(event)));
  let focused = 0;                                 // the map the keyboard is on
  const say = () => {
    canvas.setAttribute("aria-valuenow", focused);
    canvas.setAttribute("aria-label", layer.values ? t("units.keys", words(focused)) : t("strip.keys", words(focused)));
  };
  Object.entries({tabindex: 0, role: "slider", "aria-valuemin": 0, "aria-valuemax": count - 1})
    .forEach(([name, value]) => canvas.setAttribute(name, value));
  say();
  canvas.addEventListener("keydown", (event) => {
    const step = arrow(event);                     // right and up: the next map; left and down: the one before
    if (!step && !presses(event)) return;
    event.preventDefault();
    if (!step) { choose(layer.name, focused); return; }
    focused = Math.max(0, Math.min(count - 1, focused + step[0] - step[1]));
    say();
  });
  return canvas;
}

// Map k of a layer, large, with what made it: a convolution's kernel (GET /kernels), a pooling's window, or
// for any other layer what its cells are made of (POST /features?layer=L, its "parts", asked once per image).
async function choose(name, k) {
  const vector = image.vectors.find((l) => l.name === name);
  const layer = vector ?? image.layers.find((l) => l.name === name);
  const asked = ++chooseAsked;
  pause();
  chosen = {name, map: k};
  document.querySelectorAll(".maps canvas.chosen").forEach((c) => c.classList.remove("chosen"));
  document.querySelector(`.maps canvas[data-layer="${name}"]:is([data-map="${k}"], [data-strip])`)
    ?.classList.add("chosen");
  $("detail").hidden = false;
  if (vector) { chooseUnit(vector, k, asked); return; }
  $("detail-title").textContent = t("detail.title", {layer: name, type: layer.type, map: k, count: layer.shape[0],
                                                     height: layer.shape[1], width: layer.shape[2]});
  const layerWindow = run.layers.find((l) => l.name === name).window;
  let kernel = null, parts = null;
  try {
    if (layer.type === "Conv2d") kernel = await kernelOf(run, name);
    else if (!layerWindow) parts = await partsOf(name);
  } catch (error) { if (asked === chooseAsked) showError($("mac"), error); return; }
  if (asked !== chooseAsked) return;
  const input = inputOf(name);
  const channels = input?.maps ? channelsRead(layer, layerWindow, kernel, parts, k)
    .filter((c) => c < input.maps.length) : [];
  if (channel === null || !channels.includes(channel)) channel = channels[0] ?? null;
  detailShapes(false);
  $("detail-kernel-box").hidden = !kernel;
  $("detail-input-box").hidden = !channels.length;
  $("detail-deconv-box").hidden = false;
  $("detail-map-note").textContent = t("detail.map");
  $("detail-kernel-note").textContent = t("detail.kernel");
  show({layer, layerWindow, kernel, parts, input, source: channels.length ? input : null, k, channels, cell: [0, 0]});
  showDeconv(name, k);
}

// Number j of a layer of numbers (F,) (the classifier's Flatten, Linear, activations): the layer as a strip to
// step along, its input x (the layer before, flattened) and, for a Linear layer, its weights (GET /linear/L). The
// view is that of a map of 1 × F cells, number j its cell (0, j).
async function chooseUnit(layer, j, asked) {
  const count = layer.shape[0];
  $("detail-title").textContent = t("units.title", {layer: layer.name, type: layer.type, count});
  let weights = null;
  try {
    if (layer.type === "Linear") weights = await linearOf(run, layer.name);
  } catch (error) { if (asked === chooseAsked) showError($("mac"), error); return; }
  if (asked !== chooseAsked) return;
  const input = inputOf(layer.name);
  const x = input && (input.values ?? input.maps.flat(2));
  detailShapes(true);
  $("detail-input-box").hidden = !x;
  $("detail-kernel-box").hidden = !weights;
  $("detail-deconv-box").hidden = true;
  $("detail-map-note").textContent = t("units.map");
  const scale = weights && largest(weights.weight);   // the weights' colours: one scale for the whole layer
  show({layer: {...layer, shape: [1, 1, count], maps: [[layer.values]]},
        units: {type: layer.type, input, x, weights, scale}, k: 0, cell: [0, j]});
}

// The detail's canvases: square for a map, strips UNIT_HEIGHT high for a layer of numbers.
function detailShapes(strips) {
  for (const id of ["detail-map", "detail-input", "detail-kernel"]) $(id).height = strips ? UNIT_HEIGHT : $(id).width;
}

// A view in the detail, the cursor, the arrow keys and the step control moving its cell.
function show(view) {
  drawDetail(view);
  $("detail-map").onmousemove = (event) => followCursor(event, view);
  $("detail-map").onkeydown = (event) => moveCell(event, view);
  $("detail-step").onclick = () => (stepping ? pause() : play(view));
}

// What the cells of a layer are made of, for the image shown (views.features → viz.cells.parts).
function partsOf(name) {
  if (!image.parts.has(name)) {
    const asked = postPixels(run, `features?layer=${encodeURIComponent(name)}`, image.pixels)
      .then((answer) => answer.layers[0].parts);
    asked.catch(() => image.parts.delete(name));
    image.parts.set(name, asked);
  }
  return image.parts.get(name);
}

// What a layer reads: the previous layer's maps or numbers ({name, maps} or {name, values}), or the network's input
// for the first one (null if unknown).
function inputOf(name) {
  const names = run.layers.map((l) => l.name);
  const position = names.indexOf(name);
  if (position === 0) return {name: "input", maps: image.input};
  const previous = [...image.layers, ...image.vectors].find((l) => l.name === names[position - 1]);
  return previous ? {name: previous.name, maps: previous.maps, values: previous.values} : null;
}

// The input maps whose cells map k reads, one by one: a convolution's weight is (K, C/groups, kh, kw), so map k
// reads the C/groups maps of its group; a pooling, an activation or a batch norm reads map k alone; a residual
// block's shortcut adds map k (where it is the identity or a subsampling of it); a concatenation's map k is one
// map of one of its inputs. None ([]) where the cell comes from all the input's maps at once.
function channelsRead(layer, layerWindow, kernel, parts, k) {
  if (kernel) {
    const perGroup = kernel.weight[0].length;
    const group = Math.floor(k / (layer.shape[0] / kernel.groups));
    return Array.from({length: perGroup}, (_, c) => group * perGroup + c);
  }
  if (layerWindow) return [k];                                      // a pooling: channel by channel
  if (!parts) return [];
  if (parts.kind === "per_channel" || parts.kind === "batch_norm") return [k];
  if (parts.kind === "residual") {
    const reads = parts.shortcut_reads;
    return reads.kind === "identity" || (reads.kind === "subsample" && k < reads.channels) ? [k] : [];
  }
  if (parts.kind === "concat") {
    const {branch, c} = concatBranch(parts, k);
    return branch.identity ? [c] : [];
  }
  return [];
}

// The input (branch) of a concatenation that its map k comes from, and which of that branch's maps it is.
function concatBranch(parts, k) {
  let c = k;
  for (const [n, branch] of parts.branches.entries()) {
    if (c < branch.channels) return {n, branch, c};
    c -= branch.channels;
  }
  return null;
}

// The cell under the cursor on the large map.
function followCursor(event, view) {
  const box = event.target.getBoundingClientRect();
  const [, h, w] = view.layer.shape;
  const i = Math.min(h - 1, Math.floor((event.clientY - box.top) / box.height * h));
  const j = Math.min(w - 1, Math.floor((event.clientX - box.left) / box.width * w));
  if (i !== view.cell[0] || j !== view.cell[1]) { pause(); view.cell = [i, j]; drawDetail(view); }
}

// The arrow keys move the cell on the large map, as the cursor does.
function moveCell(event, view) {
  const step = arrow(event);
  if (!step) return;
  event.preventDefault();
  pause();
  const [, h, w] = view.layer.shape;
  const [i, j] = view.cell;
  view.cell = [Math.max(0, Math.min(h - 1, i + step[1])), Math.max(0, Math.min(w - 1, j + step[0]))];
  drawDetail(view);
}

// The step control playing: the cell moves on every STEP_MS along its row, then to the next row, from the last
// cell back to the first, its window and arithmetic following (CNN Explainer's animation, on this model). Pressed
// again, another map chosen, or the cell moved by hand, it pauses.
function play(view) {
  pause();
  $("detail-step").setAttribute("aria-pressed", "true");
  stepping = setInterval(() => {
    const [, h, w] = view.layer.shape;
    const next = (view.cell[0] * w + view.cell[1] + 1) % (h * w);
    view.cell = [Math.floor(next / w), next % w];
    drawDetail(view);
  }, STEP_MS);
}

function pause() {
  clearInterval(stepping);
  stepping = null;
  $("detail-step").setAttribute("aria-pressed", "false");
}

// ZFNet's deconvnet: the map's strongest activation projected back to the pixels (gray 0, as in the paper).
async function showDeconv(name, k) {
  const note = $("detail-deconv-note");
  const asked = ++deconvAsked;
  let result;
  try {
    result = await postPixels(run, `deconv?layer=${encodeURIComponent(name)}&map=${k}`, image.pixels);
  } catch (error) { if (asked === deconvAsked) showError(note, error); return; }
  if (asked !== deconvAsked) return;               // another map was chosen meanwhile
  const m = largest(result.projection);
  const channels = result.projection;
  const plane = channels[0].map((row, i) => row.map((_, j) => channels.reduce((sum, c) => sum + c[i][j], 0) / channels.length));
  paint($("detail-deconv"), plane, (v) => gray(clamp(0.5 + v / (2 * m))));
  note.textContent = t("deconv.note", {position: result.position.join(", ")});
}

// ---- the detail: the map, its input with the window, and the arithmetic of one cell ------------------------
function drawDetail(view) {
  if (view.units) { drawUnit(view); return; }
  const {layer, parts, source, k, cell: [i, j]} = view;
  const colour = grayFor(layer.maps);
  paint($("detail-map"), layer.maps[k], colour);
  outline($("detail-map"), [i], [j], layer.shape.slice(1));
  showScale($("detail-map-scale"), colour, minMax(layer.maps), t("detail.scale", {layer: layer.name}),
            t("detail.zero", {map: k}), minMax(layer.maps[k]));
  if (source) {
    paint($("detail-input"), source.maps[channel], grayFor(source.maps));
    const reads = parts?.shortcut_reads;
    const what = describe(source, channel);
    const read = () => (reads.kind === "identity" ? t("shortcut.asIs") : t("shortcut.adds", {stride: reads.stride}));
    $("detail-input-note").textContent = parts?.kind === "residual" ? t("input.residual", {source: what, read: read()})
      : parts?.kind === "concat" ? t("input.concat", {source: what, map: k}) : t("input.note", {source: what});
  }
  $("mac").replaceChildren(...arithmetic(view));
}

// How the layer computed y[k, i, j]: a convolution's sum, a pooling's max or mean, or what the layer's parts say.
function arithmetic(view) {
  const {layer, layerWindow, kernel, parts, source, k, cell: [i, j]} = view;
  if (source && layerWindow) {
    const lines = [windowLines(layerWindow, 0, i), windowLines(layerWindow, 1, j)];
    outline($("detail-input"), ...lines, planeShape(source));
    return kernel ? convolution(view, lines) : pooling(view, lines);
  }
  const explain = {batch_norm: batchNorm, residual, concat, per_channel: perChannel}[parts?.kind];
  if (explain && (source || parts.kind === "residual" || parts.kind === "concat")) return explain(view);
  return [element("p", "", t("math.none", {cell: `y[${k}, ${i}, ${j}]`, value: fmt(layer.maps[k][i][j]),
                                          type: layer.type, inputs: allMaps(view)}))];
}

const allMaps = ({input}) => (input ? t("math.allMaps", {count: input.maps.length}) : t("math.itsInput"));

// "(the network computed y)": what the network computed for the cell, after our arithmetic of it.
const networkComputed = ({layer, k, cell: [i, j]}) => t("math.computed", {value: fmt(layer.maps[k][i][j])});

// The one line of a cell's arithmetic, "y[k, i, j] = … = ours   (the network computed y)"; "y[j] = …" for a number
// of a layer of numbers.
function computed(view, steps, ours) {
  const {units, k, cell: [i, j]} = view;
  const cell = units ? `y[${j}]` : `y[${k}, ${i}, ${j}]`;
  return element("p", "", `${cell} = ${steps.join(" = ")} = ${fmt(ours)}   ${networkComputed(view)}`);
}

// A batch norm: y = (x − μ) / √(σ² + ε) · γ + β with the statistics it normalises with (in eval its running ones)
// and its parameters, those of map k.
function batchNorm(view) {
  const {parts: n, source, k, cell: [i, j]} = view;
  const x = source.maps[k][i][j];
  outline($("detail-input"), [i], [j], planeShape(source));
  const ours = (x - n.mean[k]) / Math.sqrt(n.var[k] + n.eps) * n.weight[k] + n.bias[k];
  return [computed(view, ["(x − μ) / √(σ² + ε) · γ + β", `(${fmt(x)} ${plus(-n.mean[k])}) / √(${fmt(n.var[k])} + ${
    n.eps}) · ${fmt(n.weight[k])} ${plus(n.bias[k])}`], ours),
          element("p", "note", n.running ? t("bn.running", {map: k}) : t("bn.image", {map: k}))];
}

// A residual block: y = [ReLU](F(x) + S(x)), F the block's body (all maps of x), S its shortcut.
function residual(view) {
  const {parts, input, source, k, cell: [i, j]} = view;
  const [body, short] = [parts.body[k][i][j], parts.shortcut[k][i][j]];
  const sum = body + short;
  const sumText = `${fmt(body)} ${plus(short)}`;
  const steps = parts.relu ? ["ReLU(F(x) + S(x))", `ReLU(${sumText})`, `ReLU(${fmt(sum)})`] : ["F(x) + S(x)", sumText];
  const reads = parts.shortcut_reads;
  let shortcut;
  if (reads.kind === "identity" && source) {
    outline($("detail-input"), [i], [j], planeShape(source));
    shortcut = t("shortcut.identity", {cell: `S(x)[${k}, ${i}, ${j}]`, read: `x[${k}, ${i}, ${j}]`,
                                       value: fmt(source.maps[k][i][j])});
  } else if (reads.kind === "subsample" && source) {
    const [si, sj] = [reads.stride * i, reads.stride * j];
    outline($("detail-input"), [si], [sj], planeShape(source));
    shortcut = t("shortcut.subsample", {cell: `S(x)[${k}, ${i}, ${j}]`, read: `x[${k}, ${reads.stride}·${i}, ${
      reads.stride}·${j}]`, value: fmt(source.maps[k][si][sj]), map: k, stride: reads.stride});
  } else if (reads.kind === "subsample" && k >= reads.channels) {
    shortcut = t("shortcut.zero", {map: k, channels: reads.channels});
  } else if (reads.kind === "layers") {
    shortcut = t("shortcut.layers", {layers: reads.layers.join(" → "), inputs: allMaps(view)});
  } else {
    shortcut = `S(x)[${k}, ${i}, ${j}] = ${fmt(short)}`;
  }
  return [computed(view, steps, parts.relu ? Math.max(0, sum) : sum),
          element("p", "note", t("body.layers", {layers: parts.body_layers.join(" → "), inputs: allMaps(view)})),
          element("p", "note", shortcut)];
}

// A concatenation: map k is map c of one of its inputs (branches), stacked one after the other.
function concat(view) {
  const {layer, parts, source, k, cell: [i, j]} = view;
  const {n, branch, c} = concatBranch(parts, k);
  const what = branch.identity ? t("concat.itself") : t("concat.layers", {layers: branch.layers.join(" → ")});
  const lines = [element("p", "", t("concat.map", {map: k, channel: c, input: n, branch: branch.name, what,
                                                   cell: `y[${k}, ${i}, ${j}]`, value: fmt(layer.maps[k][i][j])}))];
  if (source) {
    outline($("detail-input"), [i], [j], planeShape(source));
    lines.push(element("p", "note", `x[${c}, ${i}, ${j}] = ${fmt(source.maps[c][i][j])}`));
  }
  return lines;
}

// A layer that works map by map: f(x) cell by cell (ReLU's max(0, x) with its numbers), a global pooling's mean
// or max, or (an adaptive pooling to another size) a region of map k.
function perChannel(view) {
  const {layer, source, k, cell: [i, j]} = view;
  const x = source.maps[k];
  const [h, w] = planeShape(source);
  const cellwise = layer.shape[1] === h && layer.shape[2] === w;
  if (!cellwise && layer.shape[1] === 1 && layer.shape[2] === 1) {
    outline($("detail-input"), [0, h - 1], [0, w - 1], [h, w]);
    const values = x.flat();
    const isMax = layer.type.includes("Max");
    const ours = isMax ? Math.max(...values) : values.reduce((a, b) => a + b, 0) / values.length;
    const words = {map: k, height: h, width: w};
    return [computed(view, [isMax ? t("math.globalMax", words) : t("math.globalMean", words)], ours)];
  }
  if (!cellwise) {
    return [element("p", "", t("math.region", {cell: `y[${k}, ${i}, ${j}]`, value: fmt(layer.maps[k][i][j]),
                                              type: layer.type, map: k}))];
  }
  outline($("detail-input"), [i], [j], [h, w]);
  if (layer.type === "ReLU") return [computed(view, [`max(0, x[${k}, ${i}, ${j}])`, `max(0, ${fmt(x[i][j])})`],
                                              Math.max(0, x[i][j]))];
  return [element("p", "", `y[${k}, ${i}, ${j}] = ${layer.type}(x[${k}, ${i}, ${j}]) = ${layer.type}(${
    fmt(x[i][j])}) = ${fmt(layer.maps[k][i][j])}`)];
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
  const words = {cell: `y[${k}, ${i}, ${j}]`, ours: fmt(value), network: fmt(layer.maps[k][i][j])};
  return [table(t("pool.window", {source: describe(source, channel)}), x),
          element("p", "", isMax ? t("pool.max", words) : t("pool.mean", words))];
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
  return [table(t("conv.window", {source: describe(source, channel)}), windowValues(source.maps[channel], lines)),
          table(t("conv.kernel", {kernel: k, channel}), weights(channel)),
          table("w · x", products(channel)),
          sumLine(view, sums)];
}

// "y[k, i, j] = b + Σ_c Σ_uv w·x = b + term + term … = ours (the network computed y)"; a term opens its channel.
function sumLine(view, sums) {
  const {kernel, k, channels, cell: [i, j]} = view;
  const bias = kernel.bias ? kernel.bias[k] : 0;
  const line = element("p", "", `y[${k}, ${i}, ${j}] = b + Σ_c Σ_uv w·x = ${fmt(bias)}`);
  channels.forEach((c, n) => {
    if (c === channel) { line.append(" + ", element("b", "", fmt(sums[n]))); return; }
    const link = element("a", "", fmt(sums[n]));
    link.href = "#"; link.title = t("conv.channel", {channel: c});
    link.addEventListener("click", (event) => { event.preventDefault(); channel = c; drawDetail(view); });
    line.append(" + ", link);
  });
  const total = sums.reduce((a, b) => a + b, bias);
  line.append(` = ${fmt(total)}   ${networkComputed(view)}`);
  return line;
}

// ---- a layer of numbers (F,): the classifier's Flatten, Linear layers and their activations --------------------
// Number j: the layer's strip with j outlined, its input x's strip, and how the layer computed y[j].
function drawUnit(view) {
  const {layer, units: {input, x}, cell: [, j]} = view;
  const values = layer.maps[0][0];
  const colour = grayFor(values);
  paint($("detail-map"), layer.maps[0], colour);
  outline($("detail-map"), [0], [j], [1, values.length]);
  showScale($("detail-map-scale"), colour, minMax(values), t("detail.scale", {layer: layer.name}));
  if (x) {
    paint($("detail-input"), [x], grayFor(x));
    $("detail-input-note").textContent = t("units.input", {layer: input.name, count: x.length});
  }
  $("mac").replaceChildren(...unitArithmetic(view));
}

// A Linear unit's sum, a ReLU's max(0, x[j]), a flattening's x[c, i, j]; for another layer, its value alone.
function unitArithmetic(view) {
  const {layer, units: {type, input, x, weights}, cell: [, j]} = view;
  if (weights) return linearSum(view);
  if (x) outline($("detail-input"), [0], [j], [1, x.length]);
  if (x && type === "ReLU") return [computed(view, [`max(0, x[${j}])`, `max(0, ${fmt(x[j])})`], Math.max(0, x[j]))];
  if (x && type === "Flatten" && input.maps) {
    const [h, w] = planeShape(input);
    const [c, i, jj] = [Math.floor(j / (h * w)), Math.floor(j / w) % h, j % w];
    return [computed(view, [`x[${c}, ${i}, ${jj}]`], input.maps[c][i][jj]),
            element("p", "note", t("units.flatten", {height: h, width: w}))];
  }
  return [element("p", "", t("math.none", {cell: `y[${j}]`, value: fmt(layer.maps[0][0][j]), type,
                                          inputs: t("math.itsInput")}))];
}

// A Linear layer's unit j: y[j] = b[j] + Σ_i w[j, i]·x[i] over all its inputs i, the TERMS largest |w·x| listed
// (and outlined on x's strip), the others summed into one number, the whole sum checked against the network's.
function linearSum(view) {
  const {units: {x, weights, scale}, cell: [, j]} = view;
  const w = weights.weight[j];
  const bias = weights.bias ? weights.bias[j] : 0;
  const terms = w.map((wi, i) => ({i, x: x[i], w: wi, product: wi * x[i]}))
    .sort((a, b) => Math.abs(b.product) - Math.abs(a.product));
  const [listed, others] = [terms.slice(0, TERMS), terms.slice(TERMS)];
  const sum = (some) => some.reduce((total, term) => total + term.product, 0);
  for (const term of listed) outline($("detail-input"), [0], [term.i], [1, x.length]);
  paint($("detail-kernel"), [w], (v) => diverging(v / scale));
  $("detail-kernel-note").textContent = t("units.weights", {unit: j, count: w.length});
  const lines = [element("p", "", t("linear.formula", {cell: `y[${j}]`, unit: j, count: x.length})),
                 headedTable(t("linear.largest", {count: listed.length}), ["i", "x[i]", `w[${j}, i]`, "w · x"],
                             listed.map((term) => [term.i, fmt(term.x), fmt(term.w), fmt(term.product)]))];
  if (others.length) lines.push(element("p", "note", t("linear.others", {count: others.length,
                                                                          sum: fmt(sum(others))})));
  const parts = [fmt(bias), plus(sum(listed)), ...(others.length ? [plus(sum(others))] : [])];
  lines.push(computed(view, ["b + Σ_i w·x", parts.join(" ")], bias + sum(terms)));
  return lines;
}

// ---- the softmax at the end --------------------------------------------------------------------------------
// The scores z of the last layer (the logits) → e^(z − max z) → ÷ Σ, each class's numbers (the CLASSES most
// probable, in the prediction's order), our p beside the prediction's, and why max z is subtracted.
function showSoftmax(classes) {
  const {top, shifted, exps, total, probabilities} = softmax(classes.map((c) => c.score));
  const rows = classes.slice(0, CLASSES).map((c, n) => [c.name, fmt(c.score), fmt(shifted[n]), fmt(exps[n]),
                                                         fmt(probabilities[n]), fmt(c.probability)]);
  headedTable("", [t("softmax.class"), "z", "z − max z", "e^(z − max z)", "p = e^(z − max z) / Σ",
                   t("softmax.predicted")], rows, $("softmax-table"));
  const notes = [t("softmax.max", {max: fmt(top), name: classes[0].name}),
                 t("softmax.sum", {sum: fmt(total), count: classes.length})];
  if (classes.length > CLASSES) notes.push(t("softmax.others", {count: classes.length - CLASSES}));
  $("softmax-notes").replaceChildren(...notes.map((note) => element("p", "", note)),
                                     element("p", "note", t("softmax.why")));
  $("softmax").hidden = false;
}

// A table (a new one, or `made` emptied): its caption (none if ""), a row of column headings, then rows of texts.
function headedTable(caption, headings, rows, made = element("table")) {
  made.replaceChildren();
  if (caption) made.appendChild(element("caption", "", caption));
  const head = made.insertRow();
  for (const heading of headings) {
    const th = element("th", "", heading);
    th.scope = "col";
    head.appendChild(th);
  }
  for (const row of rows) {
    const tr = made.insertRow();
    for (const text of row) tr.insertCell().textContent = text;
  }
  return made;
}

const describe = (source, c) => (source.name === "input" ? t("source.input", {channel: c})
                                                         : t("source.layer", {layer: source.name, map: c}));

// A number with DECIMALS decimals ("0" for what rounds to 0, not "-0.0000"); null is the padding's 0.
function fmt(v) {
  if (v === null) return t("math.pad");
  return Math.abs(v) < 0.5 * 10 ** -DECIMALS ? "0" : v.toFixed(DECIMALS);
}

// "+ v" or "− |v|": a term added, its sign written once.
const plus = (v) => (v < 0 ? `− ${fmt(-v)}` : `+ ${fmt(v)}`);

function table(caption, rows) {
  const t = element("table");
  t.appendChild(element("caption", "", caption));
  for (const row of rows) {
    const tr = t.insertRow();
    for (const v of row) tr.insertCell().textContent = fmt(v);
  }
  return t;
}
