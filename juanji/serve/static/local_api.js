// The page without a server: in a folder written by `juanji export RUN --web DIR` (its <html> marked
// data-juanji-export) there is no /api/, and api.js hands the page's calls here. The GET routes are files beside
// the page, the server's own answers written at export (static.json, run/metrics.json, run/kernels/L.json …, see
// juanji/interop/web.py); the POST routes are computed here by onnxruntime-web on the exported model, whose extra
// outputs are every layer's maps: the prediction, the feature maps, what a layer's cells are made of, and occlusion
// (forward passes only, in batches). Saliency, Grad-CAM and the deconvnet run the network's backward pass, which
// the export wrote as two more ONNX graphs (run/saliency.onnx, run/deconvnet.onnx: juanji/interop/onnx_backward.py),
// loaded with the model; where a layer has none, the page says so where they would be. The confusion matrix and its
// mistakes were computed at export, where the test set could be read.
import {prepareImage} from "./prepare.js";
import {softmax} from "./softmax.js";

export const active = document.documentElement.hasAttribute("data-juanji-export");

// onnxruntime-web's wasm build, copied beside the page by juanji export: nothing comes from other sites. It runs on
// one thread, so the host needs to send no cross-origin isolation headers (SharedArrayBuffer).
const RUNTIME = "./ort/ort.wasm.min.mjs";
const FORMAT = "juanji-web-export", VERSION = 1;   // static.json's, as juanji/interop/web.py writes it
const OCCLUSION = {size: 6, stride: 2};            // the server's defaults (juanji.serve.views.occlusion)
const INVERT = ["auto", "yes", "no"];
// Occluded copies run through the model at most this many input numbers at a time (64 MB of float32).
const BATCH_NUMBERS = 16 * 2 ** 20;

let exported = null;       // the promise of static.json
const folders = new Map(); // run name → its folder in the export: runPath answers at once
const missing = new Map(); // path of a file the export has not → why (the confusion matrix of an unreadable test set)
const models = new Map();  // run name → the promise of its model {entry, listing, ort, session, queue}
const files = new Map();   // path → the promise of a file's JSON, fetched once: the files never change

async function fetched(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: not in this exported page (${response.status} ${response.statusText})`);
  return response;
}

function exportedPage() {
  exported ??= fetched(document.documentElement.dataset.juanjiExport).then((r) => r.json()).then((content) => {
    if (content.format !== FORMAT || content.version !== VERSION) {
      throw new Error(`static.json is not a page this version of the page reads (${FORMAT} ${VERSION})`);
    }
    for (const {listing, folder, unavailable} of content.runs) {
      folders.set(listing.name, folder);
      if (unavailable.confusion) missing.set(runPath(listing, "confusion"), unavailable.confusion);
    }
    return content;
  });
  return exported;
}

// GET: the run list (each run's model loaded at once, while the page's host answers), or a file of the export.
export async function getJSON(path) {
  if (path === "/api/runs") {
    const content = await exportedPage();
    content.runs.forEach(({listing}) => modelOf(listing.name));
    return {runs: content.runs.map(({listing}) => listing)};
  }
  if (missing.has(path)) throw new Error(missing.get(path));
  if (!files.has(path)) {
    const asked = fetched(path).then((r) => r.json());
    asked.catch(() => files.delete(path));
    files.set(path, asked);
  }
  return files.get(path);
}

// Where a run's GET route is in the export: metrics → run/metrics.json, test-images/7 → run/test-images/7.png.
export function runPath(run, what) {
  return `${folders.get(run.name)}/${what}${what.startsWith("test-images/") ? ".png" : ".json"}`;
}

// POST: `what` is the route and its query ("analyze?class=3"); body {pixels} (C, H, W), or an image file prepared
// as `juanji predict` prepares one (prepare.js), with the query's invert and center as on the server.
export async function post(run, what, body) {
  const [route, query] = what.split("?");
  const asked = new URLSearchParams(query);
  const model = await modelOf(run.name);
  const invert = asked.get("invert") ?? "auto", center = asked.get("center") ?? "no";
  if (!INVERT.includes(invert) || !["yes", "no"].includes(center)) {
    throw new Error(`invert must be one of ${INVERT.join(", ")} and center yes or no, got '${invert}', '${center}'`);
  }
  const pixels = body instanceof Blob ? await prepareImage(body, model.listing, invert, center === "yes")
                                      : checked(body.pixels, model.listing.input_shape);
  if (route === "predict") return predict(model, pixels);
  if (route === "analyze") return analyze(model, pixels, asked);
  if (route === "explain") return explain(model, pixels, asked);
  if (route === "features") return features(model, pixels, asked.get("layer"));
  if (route === "occlusion") return occlusion(model, pixels, asked);
  if (route === "deconv") return deconv(model, pixels, asked);
  throw new Error(`${route}: no such route in an exported page`);
}

// What saliency, Grad-CAM or the deconvnet say on a page exported without the backward graphs (a layer has no ONNX
// backward: static.json's unavailable.saliency says which; or the page is older than them).
const BACKWARD = "the network's backward pass, which this exported page does not have (juanji serve shows it)";
const noBackward = (model, what) => `${what} ${BACKWARD}${model.entry.unavailable.saliency
  ? `: ${model.entry.unavailable.saliency}` : ""}.`;

function modelOf(name) {
  if (!models.has(name)) {
    const loading = load(name);
    loading.catch(() => models.delete(name));       // a failed load is tried again on the next call
    models.set(name, loading);
  }
  return models.get(name);
}

async function load(name) {
  const entry = (await exportedPage()).runs.find(({listing}) => listing.name === name);
  if (!entry) throw new Error(`no run named '${name}' in this exported page`);
  // the backward graphs with the model, while the host answers: the page needs nothing from it afterwards
  const backward = ["saliency", "deconvnet"].filter((kind) => entry.backward?.[kind]);
  const files = [entry.onnx.file, ...backward.map((kind) => entry.backward[kind].file)];
  const [ort, ...bytes] = await Promise.all([import(RUNTIME),
                                             ...files.map((file) => fetched(file).then((r) => r.arrayBuffer()))]);
  ort.env.wasm.numThreads = 1;
  const [session, ...sessions] = await Promise.all(bytes.map((data) => ort.InferenceSession.create(data, {
    executionProviders: ["wasm"]})));
  const graphs = Object.fromEntries(backward.map((kind, i) => [kind, {...entry.backward[kind], session: sessions[i]}]));
  return {entry, listing: entry.listing, ort, session, input: entry.onnx.input, queue: Promise.resolve(), graphs};
}

// The outputs `names` of a graph (the model, or one of its backward graphs: static.json's backward.saliency or
// backward.deconvnet with its session) for `count` images (data: float32, N × C × H × W) and its other inputs
// `feeds`, one run of a session at a time.
function run(model, data, count, names, graph = model, feeds = {}) {
  const [c, h, w] = model.listing.input_shape;
  const images = new model.ort.Tensor("float32", data, [count, c, h, w]);
  const result = model.queue.then(() => graph.session.run({[graph.input]: images, ...feeds}, names));
  model.queue = result.catch(() => {});
  return result;
}

// The outputs of one image: {graph output name: its value nested, without the batch axis}.
async function outputsOf(model, pixels, names, graph = model, feeds = {}) {
  const found = await run(model, Float32Array.from(pixels.flat(2)), 1, [...new Set(names)], graph, feeds);
  return Object.fromEntries(Object.entries(found).map(([name, t]) => [name, nested(t.data, t.dims.slice(1))]));
}

function nested(data, shape) {
  if (shape.length <= 1) return Array.from(data);
  const size = data.length / shape[0];
  return Array.from({length: shape[0]}, (_, i) => nested(data.subarray(i * size, (i + 1) * size), shape.slice(1)));
}

// JSON pixels as the server checks them (juanji.serve.inputs.decode_pixels): (C, H, W), or (H, W) for one channel.
function checked(pixels, shape) {
  const planes = Array.isArray(pixels) && pixels.length && !Array.isArray(pixels[0]?.[0]) ? [pixels] : pixels;
  const fits = Array.isArray(planes) && planes.length === shape[0] && planes.every((plane) => Array.isArray(plane)
    && plane.length === shape[1] && plane.every((row) => Array.isArray(row) && row.length === shape[2]
      && row.every((v) => typeof v === "number" && v >= 0 && v <= 1)));
  if (!fits) throw new Error(`pixels must be numbers in [0, 1] of the model's input shape ${shape.join("×")}`);
  return planes;
}

const withMaps = (model) => model.listing.layers.filter((layer) => layer.shape.length === 3);

// Every class with its score and probability (softmax in double precision), the most probable first.
function ranked(model, scores) {
  const {probabilities} = softmax(scores);
  return probabilities.map((probability, index) => ({index, name: model.listing.classes[index], probability,
                                                     score: scores[index]}))
    .sort((a, b) => b.probability - a.probability);
}

async function predict(model, pixels) {
  const {logits, maps} = model.entry.onnx;
  const found = await outputsOf(model, pixels, [logits, maps.input]);
  return {classes: ranked(model, found[logits]), pixels, input: found[maps.input]};
}

async function analyze(model, pixels, asked) {
  const {logits, maps, vectors} = model.entry.onnx;
  const layers = withMaps(model);
  const units = model.listing.layers.filter((layer) => layer.shape.length === 1);   // the classifier's (F,)
  const found = await outputsOf(model, pixels, [logits, maps.input, ...layers.map((l) => maps[l.name]),
                                                ...units.map((l) => vectors[l.name])]);
  return {classes: ranked(model, found[logits]), pixels, input: found[maps.input],
          layers: layers.map(({name, type, shape}) => ({name, type, shape, maps: found[maps[name]]})),
          vectors: units.map(({name, type, shape}) => ({name, type, shape, values: found[vectors[name]]})),
          explanation: await explanation(model, pixels, found, asked)};
}

async function explain(model, pixels, asked) {
  const {logits, maps} = model.entry.onnx;
  const found = await outputsOf(model, pixels, [logits, ...withMaps(model).map((l) => maps[l.name])]);
  const answer = await explanation(model, pixels, found, asked);
  if (answer.unavailable) throw new Error(answer.unavailable);
  return answer;
}

// Saliency and Grad-CAM of the class asked for (else the predicted one) as the server's /explain answers them
// (juanji.viz.pictures.inside), from `found`, the model's outputs (the logits, every layer's maps), and one run
// of saliency.onnx from that class's score: ∂S_c/∂x, and ∂S_c/∂A at the Grad-CAM layer (the one asked for, else
// the server's default, static.json's gradcam.default).
async function explanation(model, pixels, found, asked) {
  const {onnx: {logits, maps}, backward} = model.entry;
  const all = model.listing.layers;
  const asking = asked.get("layer");
  if (asking && !all.some((l) => l.name === asking)) throw new Error(`no layer named '${asking}'`);
  const scores = found[logits];
  const c = classIndex(model.listing.classes, asked.get("class"), scores);
  if (!backward) return {unavailable: noBackward(model, "Saliency and Grad-CAM need")};
  const layer = asking || backward.gradcam.default;
  const graph = model.graphs.saliency;
  if (layer && !(layer in graph.gradients)) {
    const {shape} = all.find((l) => l.name === layer);
    throw new Error(`layer ${layer} outputs shape ${shape.join("×")}, not feature maps (C, H, W); choose a layer ` +
                    "before the classifier");
  }
  const seed = new Float32Array(scores.length);
  seed[c] = 1;                                     // ∂S_c/∂scores = one-hot(c)
  const out = await outputsOf(model, pixels, [graph.gradient, ...(layer ? [graph.gradients[layer]] : [])], graph,
                              {[graph.seed]: new model.ort.Tensor("float32", seed, [1, scores.length])});
  const gradient = out[graph.gradient];
  const strongest = gradient[0].map((row, i) => row.map((_, j) => gradient.reduce((m, plane) =>
    Math.max(m, Math.abs(plane[i][j])), 0)));    // max over the channels of |∂S_c/∂x|
  const high = strongest.flat().reduce((a, b) => Math.max(a, b), 0);
  const answer = {class: c, name: model.listing.classes[c], saliency: strongest.map((row) => row.map((v) =>
    v / (high || 1))), gradcam: null, gradcam_layer: null, gradcam_centred: false, gradcam_pixels: null,
                  saliency_max: high};
  if (!layer) return answer;
  const [activations, gradients] = [found[maps[layer]], out[graph.gradients[layer]]];
  const alpha = gradients.map((plane) => plane.flat().reduce((a, b) => a + b, 0) / plane.flat().length);
  const cam = activations[0].map((row, i) => row.map((_, j) =>  // ReLU(Σ_k α_k A_k)
    Math.max(activations.reduce((sum, plane, k) => sum + alpha[k] * plane[i][j], 0), 0)));
  const centres = backward.gradcam.centres[layer];
  return {...answer, gradcam: cam, gradcam_layer: layer, gradcam_centred: centres !== null,
          gradcam_pixels: upsample(cam, model.listing.input_shape.slice(1), centres)};
}

// juanji.viz.gradcam.upsample: a map (h, w) resampled bilinearly to `size` (H, W), each cell on the centre of its
// receptive field (centres: [[start, step] of rows, [start, step] of columns]), or, where centres is null,
// stretched over the image with cells at pixel centres.
function upsample(heat, [height, width], centres) {
  const [h, w] = [heat.length, heat[0].length];
  const [rowsAt, columnsAt] = centres ?? [[height / h / 2 - 0.5, height / h], [width / w / 2 - 0.5, width / w]];
  const grid = (nIn, nOut, [start, step]) => Array.from({length: nOut}, (_, o) => {
    const position = Math.min(Math.max((o - start) / step, 0), nIn - 1);
    const low = Math.floor(position);
    return [low, Math.min(low + 1, nIn - 1), position - low];
  });
  const columns = grid(w, width, columnsAt);
  return grid(h, height, rowsAt).map(([top, bottom, dy]) => {
    const row = heat[top].map((v, j) => v * (1 - dy) + heat[bottom][j] * dy);
    return columns.map(([left, right, dx]) => row[left] * (1 - dx) + row[right] * dx);
  });
}

// ZFNet's deconvnet as juanji.viz.deconvnet computes it: the strongest activation of map `map` of `layer` (the
// first, in row-major order) put alone at that layer's output in deconvnet.onnx, projected to the network's input.
async function deconv(model, pixels, asked) {
  const [name, channel] = [asked.get("layer"), asked.get("map")];
  const all = model.listing.layers;
  const layer = all.find((l) => l.name === name);
  if (!layer) throw new Error(`no layer named '${name}'; the layers are ${all.map((l) => l.name).join(", ")}`);
  if (channel === null || !/^\d+$/.test(channel)) {
    throw new Error(`map must be a map number 0, 1, 2 …, got '${channel}'`);
  }
  if (!model.entry.backward?.deconvnet) throw new Error(noBackward(model, "The deconvnet needs"));
  const graph = model.graphs.deconvnet;
  if (!(name in graph.signals)) {
    throw new Error(`layer ${name} outputs shape ${layer.shape.join("×")}, not feature maps (C, H, W)`);
  }
  const k = Number(channel), [count, height, width] = layer.shape;
  if (k >= count) throw new Error(`layer ${name} has maps 0…${count - 1}, not ${k}`);
  const output = model.entry.onnx.maps[name];
  const plane = (await outputsOf(model, pixels, [output]))[output][k].flat();
  const at = plane.reduce((best, v, n) => (v > plane[best] ? n : best), 0);
  const feeds = Object.fromEntries(Object.entries(graph.signals).map(([signalled, input]) => {
    const {shape} = all.find((l) => l.name === signalled);
    const signal = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (signalled === name) signal[k * height * width + at] = plane[at];
    return [input, new model.ort.Tensor("float32", signal, [1, ...shape])];
  }));
  const out = await outputsOf(model, pixels, [graph.projection], graph, feeds);
  return {layer: name, map: k, position: [Math.floor(at / width), at % width], projection: out[graph.projection]};
}

// Every layer's maps, or one layer's with what its cells are made of (static.json's parts; a residual block's
// F(x) and S(x) from the model's extra outputs, S(x) being the block's input where the shortcut is the identity).
async function features(model, pixels, name) {
  const {maps} = model.entry.onnx;
  const layers = withMaps(model);
  if (name === null) {
    const found = await outputsOf(model, pixels, [maps.input, ...layers.map((l) => maps[l.name])]);
    return {input: found[maps.input], layers: layers.map(({name: n, type, shape}) => ({name: n, type, shape,
                                                                                       maps: found[maps[n]]}))};
  }
  const all = model.listing.layers;
  const position = all.findIndex((l) => l.name === name);
  if (position < 0) throw new Error(`no layer named '${name}'; the layers are ${all.map((l) => l.name).join(", ")}`);
  const layer = all[position];
  if (layer.shape.length !== 3) {
    throw new Error(`layer ${name} outputs shape ${layer.shape.join("×")}, not feature maps`);
  }
  const before = position ? maps[all[position - 1].name] : maps.input;
  let parts = model.entry.parts[name];
  const wanted = [maps.input, maps[name], before, parts?.body_output, parts?.shortcut_output].filter(Boolean);
  const found = await outputsOf(model, pixels, wanted);
  if (parts?.body_output) {
    const {body_output: body, shortcut_output: shortcut, ...rest} = parts;
    parts = {...rest, body: found[body], shortcut: found[shortcut ?? before]};
  }
  return {input: found[maps.input], layers: [{name, type: layer.type, shape: layer.shape, maps: found[maps[name]],
                                              parts}]};
}

// Zeiler & Fergus's occlusion as juanji.viz.pictures.occlusion computes it: p(class) with a size × size square of
// the mean pixel (0 once normalised) at every stride-th place, and p − that at each pixel, the mean over the
// squares covering it (pixels no square covers get the whole map's mean).
async function occlusion(model, pixels, asked) {
  const size = count(asked.get("size"), "size", OCCLUSION.size), stride = count(asked.get("stride"), "stride",
                                                                                OCCLUSION.stride);
  const [channels, height, width] = model.listing.input_shape;
  if (size < 1 || size > Math.min(height, width)) {
    throw new Error(`occluder size must be between 1 and ${Math.min(height, width)} pixels, got ${size}`);
  }
  if (stride < 1) throw new Error(`stride must be at least 1, got ${stride}`);
  const {logits} = model.entry.onnx;
  const scores = (await outputsOf(model, pixels, [logits]))[logits];
  const c = classIndex(model.listing.classes, asked.get("class"), scores);
  const probability = softmax(scores).probabilities[c];
  const image = Float32Array.from(pixels.flat(2));
  const mean = model.listing.normalization?.[0];
  const fill = (ch) => (mean ? mean[mean.length === 1 ? 0 : ch] : 0);
  const rows = Math.floor((height - size) / stride) + 1, columns = Math.floor((width - size) / stride) + 1;
  const plane = height * width, perBatch = Math.max(1, Math.floor(BATCH_NUMBERS / image.length));
  const map = [];
  for (let start = 0; start < rows * columns; start += perBatch) {
    const n = Math.min(perBatch, rows * columns - start);
    const batch = new Float32Array(n * image.length);
    for (let k = 0; k < n; k++) {
      const [top, left] = [Math.floor((start + k) / columns) * stride, ((start + k) % columns) * stride];
      batch.set(image, k * image.length);
      for (let ch = 0; ch < channels; ch++) {
        for (let i = top; i < top + size; i++) {
          batch.fill(fill(ch), k * image.length + ch * plane + i * width + left,
                     k * image.length + ch * plane + i * width + left + size);
        }
      }
    }
    const out = (await run(model, batch, n, [logits]))[logits];
    const classes = out.dims[1];
    for (let k = 0; k < n; k++) {
      map.push(softmax(Array.from(out.data.subarray(k * classes, (k + 1) * classes))).probabilities[c]);
    }
  }
  const change = pixelMap(map, rows, columns, height, width, size, stride)
    .map((row) => row.map((v) => probability - v));
  return {class: c, name: model.listing.classes[c], probability, size, stride,
          map: Array.from({length: rows}, (_, i) => map.slice(i * columns, (i + 1) * columns)),
          drop: change.map((row) => row.map((v) => Math.max(v, 0))), change};
}

// juanji.viz.occlusion.pixel_map: each pixel the mean of the squares on it, else the mean of the whole map.
function pixelMap(map, rows, columns, height, width, size, stride) {
  const total = Array.from({length: height}, () => new Float64Array(width));
  const covered = Array.from({length: height}, () => new Float64Array(width));
  map.forEach((value, n) => {
    const [top, left] = [Math.floor(n / columns) * stride, (n % columns) * stride];
    for (let i = top; i < top + size; i++) {
      for (let j = left; j < left + size; j++) { total[i][j] += value; covered[i][j] += 1; }
    }
  });
  const whole = map.reduce((a, b) => a + b, 0) / map.length;
  return total.map((row, i) => Array.from(row, (sum, j) => (covered[i][j] ? sum / covered[i][j] : whole)));
}

function count(value, name, otherwise) {
  if (value === null) return otherwise;
  if (!/^\d+$/.test(value)) throw new Error(`${name} must be a whole number of pixels, got '${value}'`);
  return Number(value);
}

// The class a query names, as juanji.trained.TrainedModel.class_index finds it (the name, the name in any case,
// or its number), else the predicted one.
function classIndex(classes, value, scores) {
  if (value === null || value === "") return scores.indexOf(Math.max(...scores));
  if (classes.includes(value)) return classes.indexOf(value);
  const folded = classes.map((c) => c.toLowerCase());
  if (folded.includes(value.toLowerCase())) return folded.indexOf(value.toLowerCase());
  if (/^\d+$/.test(value) && Number(value) < classes.length) return Number(value);
  throw new Error(`unknown class '${value}' (classes: ${classes.join(", ")})`);
}
