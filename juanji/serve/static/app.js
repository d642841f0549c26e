// juanji serve's page, the module index.html loads: it chooses a run and wires the sections together around
// the image they all look at (drawn, uploaded, or a test image), which stays when another run is chosen. Each
// image is analysed ONCE by POST /api/runs/RUN/analyze: the prediction, every layer's maps, saliency and Grad-CAM
// in one answer; its occlusion is a second request, and another run's prediction of it (to compare) a third.
// While a stroke is being drawn only /predict is asked, one request at a time; the drawing is analysed once no
// stroke began for ANALYSIS_IDLE_MS, and an answer about an older drawing is never shown. The run list is re-read
// as the curves are: a run's new best.npz is shown (and the image analysed by it) soon after `juanji train` writes it.
// The page uses only the JSON API (docs/reference/serve-api.md): whatever it shows, a script can fetch too.
import {getJSON, postImage, postPixels} from "./api.js";
import {canvasPixels, newCanvas, setupCanvas, showPixels} from "./canvas.js";
import {explainQuery, forgetOcclusion, setupExplain, showExplainChoices, showExplanation, showOcclusion}
  from "./explain.js";
import {integer, percent, t, translatePage} from "./i18n.js";
import {resetInside, showInside} from "./inside.js";
import {setupKernels, showKernelChoices} from "./kernels.js";
import {$, showError} from "./page.js";
import {showComparison, showCompareChoices, showPrediction} from "./prediction.js";
import {resetConfusion, setupTraining} from "./training.js";

let runs = [];             // every run served (GET /api/runs): ready, waiting for a checkpoint, or skipped
let run = null;            // the run chosen, a ready one; null while none is
let image = null;          // the pixels (C, H, W) analysed last: the canvas's, or the server's for a file
let file = null;           // the image file shown, {blob, description}, sent again to another run; null: a drawing
let shown = null;          // the analysis shown last (its prediction is compared with another run's)
let analysisAsked = 0;     // the number of the latest analysis asked for (or of the drawing, changed since): a late
                           // answer to an older one is dropped
let analysisTimer = null;  // the analysis of the drawing, waiting for ANALYSIS_IDLE_MS without a new stroke
let compareAsked = 0;      // … and of the latest comparison
let predicting = false;    // a /predict of the drawing is on its way …
let drawnSince = false;    // … and the drawing has changed since it was asked

const RUNS_POLL_MS = 3000; // the run list re-read every 3 s, as the curves: an epoch takes far longer
// A drawing is analysed (and then its occlusion asked) this long after its last stroke: quick strokes make one
// analysis, not one each, and a heavy request never waits behind the analyses of drawings already gone.
const ANALYSIS_IDLE_MS = 300;

async function start() {
  translatePage();
  runs = (await getJSON("/api/runs")).runs;
  const select = $("run");
  select.addEventListener("change", () => selectRun(runs.find((r) => r.name === select.value)));
  setupCanvas({onDraw: () => { file = null; drawingChanged(); if (run) predictDrawing(); },  // a stroke (or Clear)
               onStrokeEnd: () => { file = null; drawingChanged(); if (run) analyzeDrawing(); },  // makes the canvas
               onFile: (blob, description) => run && openFile(blob, description)});             // the image
  setupExplain(() => analyzePixels(image));        // another class or layer: the same pixels again
  setupKernels();
  setupTraining(runs, openFile);
  $("compare-run").addEventListener("change", () => compare(shown));
  showRuns();
  setInterval(pollRuns, RUNS_POLL_MS);
}

const ready = (r) => r.state === "ready";

// The runs in the menu (one that cannot be chosen greyed, with its reason: training, no checkpoint yet; a text
// run …), the one chosen shown: the same one if it is still ready, else the first ready one.
function showRuns() {
  const select = $("run");
  select.replaceChildren(...runs.map((r) => {
    const option = new Option(ready(r) ? r.name : `${r.name}: ${r.reason}`, r.name);
    option.disabled = !ready(r);
    return option;
  }));
  const same = run && runs.find((r) => r.name === run.name && ready(r));
  const chosen = same || runs.find(ready);
  if (!chosen) { run = null; showRunInfo(); return; }
  select.value = chosen.name;
  if (chosen.loads !== run?.loads || chosen.name !== run?.name) { selectRun(chosen); return; }  // a new model
  run = chosen;                                    // the same model: its notice may have changed
  showRunInfo();
  showCompareChoices(runs.filter(ready), run);
}

// The run list again, in place (the training section holds the array), and shown where it changed.
async function pollRuns() {
  let fresh;
  try { fresh = (await getJSON("/api/runs")).runs; } catch (error) {
    showError($("run-notice"), error);
    $("run-notice").hidden = false;
    return;
  }
  if (JSON.stringify(fresh) === JSON.stringify(runs)) { showRunInfo(); return; }
  runs.splice(0, runs.length, ...fresh);
  showRuns();
}

// What the chosen run serves ("lenet5, 61,706 parameters, input 1×28×28, model from epoch 7, best so far"), and
// the notice of a checkpoint on disk that could not be served in its place.
function showRunInfo() {
  const notice = $("run-notice");
  notice.textContent = run?.notice || "";
  notice.hidden = !run?.notice;
  $("run-info").textContent = run
    ? t("run.info", {model: run.model, parameters: integer(run.parameters), shape: run.input_shape.join("×"),
                     source: servedFrom(run)})
    : t("run.none");
}

// "model from epoch 7, best so far (test accuracy 85.20 %)"; "model from epoch 3 (epoch-003.npz)" for another
// checkpoint; the file's name where it names no epoch.
function servedFrom(r) {
  const which = r.epoch == null ? r.checkpoint
    : r.best ? t("run.bestEpoch", {epoch: r.epoch}) : t("run.epochFile", {epoch: r.epoch, file: r.checkpoint});
  return r.test_accuracy == null ? which : t("run.accuracy", {source: which, accuracy: percent(r.test_accuracy, 2)});
}

function selectRun(chosen) {
  run = chosen;
  showRunInfo();
  showExplainChoices(run);
  showCompareChoices(runs.filter(ready), run);
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

// The drawing changed: what was asked about it before (its analysis, its occlusion) is about an older one.
function drawingChanged() {
  clearTimeout(analysisTimer);
  analysisAsked++;
  forgetOcclusion();
}

// A stroke ended (or the canvas was cleared): the drawing is analysed if no stroke begins for ANALYSIS_IDLE_MS.
function analyzeDrawing() {
  analysisTimer = setTimeout(() => analyzePixels(canvasPixels()), ANALYSIS_IDLE_MS);
}

// The analysis of pixels (C, H, W): the drawing after its last stroke, or the same image for another class or layer.
async function analyzePixels(pixels) {
  clearTimeout(analysisTimer);
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
  clearTimeout(analysisTimer);
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
  const other = runs.find((r) => r.name === $("compare-run").value && ready(r));
  if (!other || !result) { showComparison(null); return; }
  const mine = run;
  try {
    const answer = file ? await postImage(other, "predict", file.blob)
                        : await postPixels(other, "predict", canvasPixels(other.input_shape));
    if (asked === compareAsked) showComparison([{run: mine, result}, {run: other, result: answer}]);
  } catch (error) { if (asked === compareAsked) showError($("compare-note"), error); }
}

start();
