// juanji serve's page, the module index.html loads: it chooses a run and wires the sections together around
// the image they all look at (drawn, uploaded, or a test image), which stays when another run is chosen. Each
// image is analysed ONCE by POST /api/runs/RUN/analyze: the prediction, every layer's maps, saliency and Grad-CAM
// in one answer; its occlusion is a second request, and another run's prediction of it (to compare) a third.
// While a stroke is being drawn only /predict is asked, one request at a time.
// The page uses only the JSON API (docs/reference/serve-api.md): whatever it shows, a script can fetch too.
import {getJSON, postImage, postPixels} from "./api.js";
import {canvasPixels, newCanvas, setupCanvas, showPixels} from "./canvas.js";
import {explainQuery, setupExplain, showExplainChoices, showExplanation, showOcclusion} from "./explain.js";
import {resetInside, showInside} from "./inside.js";
import {setupKernels, showKernelChoices} from "./kernels.js";
import {$, showError} from "./page.js";
import {showComparison, showCompareChoices, showPrediction} from "./prediction.js";
import {resetConfusion, setupTraining} from "./training.js";

let runs = [];             // every run served (GET /api/runs)
let run = null;            // the run chosen
let image = null;          // the pixels (C, H, W) analysed last: the canvas's, or the server's for a file
let file = null;           // the image file shown, {blob, description}, sent again to another run; null: a drawing
let shown = null;          // the analysis shown last (its prediction is compared with another run's)
let analysisAsked = 0;     // the number of the latest analysis asked for: a late answer to an older one is dropped
let compareAsked = 0;      // … and of the latest comparison
let predicting = false;    // a /predict of the drawing is on its way …
let drawnSince = false;    // … and the drawing has changed since it was asked

async function start() {
  runs = (await getJSON("/api/runs")).runs;
  const select = $("run");
  select.replaceChildren(...runs.map((r) => new Option(r.name, r.name)));
  select.addEventListener("change", () => selectRun(runs.find((r) => r.name === select.value)));
  setupCanvas({onDraw: () => { file = null; predictDrawing(); },                 // a stroke (or Clear) makes
               onStrokeEnd: () => { file = null; analyzePixels(canvasPixels()); },  // the canvas the image
               onFile: openFile});
  setupExplain(() => analyzePixels(image));        // another class or layer: the same pixels again
  setupKernels();
  setupTraining(runs, openFile);
  $("compare-run").addEventListener("change", () => compare(shown));
  selectRun(runs[0]);
}

function selectRun(chosen) {
  run = chosen;
  $("run-info").textContent = `${run.model}, ${run.parameters.toLocaleString("en")} parameters, input ${
    run.input_shape.join("×")}, best.npz of epoch ${run.epoch}${run.test_accuracy != null
      ? ` (test accuracy ${(100 * run.test_accuracy).toFixed(2)} %)` : ""}`;
  showExplainChoices(run);
  showCompareChoices(runs, run);
  resetInside(run);
  resetConfusion(run);
  newCanvas(run.input_shape);                      // the image kept: a file is prepared again for this run
  if (file) analyzeFile(file.blob, file.description); else analyzePixels(canvasPixels());
  showKernelChoices(run);
}

// An image file (uploaded, or a test image): kept, so that another run can be shown it as it is.
function openFile(blob, description) {
  file = {blob, description};
  return analyzeFile(blob, description);
}

// While drawing: the prediction of the latest drawing, one request at a time (what was drawn meanwhile next).
async function predictDrawing() {
  if (predicting) { drawnSince = true; return; }
  predicting = true;
  try {
    showPrediction(run, await postPixels(run, "predict", canvasPixels()));
  } catch (error) {
    showError($("topk"), error);
  } finally {
    predicting = false;
    if (drawnSince) { drawnSince = false; predictDrawing(); }
  }
}

// The analysis of pixels (C, H, W): the drawing at a stroke's end, or the same image for another class or layer.
async function analyzePixels(pixels) {
  const asked = ++analysisAsked;
  image = pixels;
  try {
    const result = await postPixels(run, `analyze?${explainQuery()}`, pixels);
    if (asked === analysisAsked) showAnalysis(result, pixels);
  } catch (error) { if (asked === analysisAsked) showError($("topk"), error); }
}

// The analysis of an image file, sent once: the server prepares it as `juanji predict` does, and the page keeps
// the pixels it answers with (not the canvas's re-sample of them).
async function analyzeFile(blob, description) {
  const asked = ++analysisAsked;
  try {
    const result = await postImage(run, `analyze?${explainQuery()}`, blob);
    if (asked !== analysisAsked) return;
    image = result.pixels;
    showPixels(image, description);
    showAnalysis(result, image);
  } catch (error) { if (asked === analysisAsked) showError($("topk"), error); }
}

function showAnalysis(result, pixels) {
  shown = result;
  showPrediction(run, result);
  showInside(result, pixels);
  showExplanation(result.explanation, pixels);
  showOcclusion(run, pixels);
  compare(result);
}

// The run chosen to compare with, shown the same image (the file itself, or the drawing at its input size),
// its prediction beside this run's.
async function compare(result) {
  const asked = ++compareAsked;
  const other = runs.find((r) => r.name === $("compare-run").value);
  if (!other || !result) { showComparison(null); return; }
  const mine = run;
  try {
    const answer = file ? await postImage(other, "predict", file.blob)
                        : await postPixels(other, "predict", canvasPixels(other.input_shape));
    if (asked === compareAsked) showComparison([{run: mine, result}, {run: other, result: answer}]);
  } catch (error) { if (asked === compareAsked) showError($("compare-note"), error); }
}

start();
