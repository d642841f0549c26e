// Talking to the server: the JSON API under /api/ (docs/reference/serve-api.md), so whatever the page shows a
// script can fetch too. An answer that is not OK becomes an Error with the server's message ({"error": "..."}).
// A page written by `juanji export --web` has no server: local_api.js answers the same calls in the browser.
import * as local from "./local_api.js";

const BUSY_TRIES = 10;     // a 503 says the server's image workers are busy: asked again after Retry-After seconds
const EVALUATION_POLL_MS = 300;   // the progress of a test-set evaluation asked this often

// The page's heavy requests carry its id and their number (headers Juanji-Page, Juanji-Sequence): the server stops
// the page's older request of the same route when a newer one comes, and answers it 409 {"superseded": true},
// thrown as a Superseded error, which the sections ignore (showError). The id comes from getRandomValues, which a
// page served over plain http to another machine has too (randomUUID needs a secure context).
const PAGE = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
let sequence = 0;

class Superseded extends Error { name = "Superseded"; }

async function api(path, options) {
  let response = await fetch(path, options);
  for (let tries = 1; response.status === 503 && tries < BUSY_TRIES; tries++) {
    const seconds = Number(response.headers.get("Retry-After")) || 1;
    await new Promise((resolve) => setTimeout(resolve, 1000 * seconds));
    response = await fetch(path, options);
  }
  if (!response.ok) {
    let answer = {error: response.statusText};
    try { answer = await response.json(); } catch (e) { /* not JSON: keep the status text */ }
    throw new (answer.superseded ? Superseded : Error)(answer.error);
  }
  return response;
}

export const getJSON = async (path, options) => (local.active ? local.getJSON(path) : (await api(path, options)).json());
export const getBlob = async (path) => (await api(path)).blob();

// The path of one of a run's routes: runPath(run, "predict") → /api/runs/NAME/predict.
export const runPath = (run, what) => (local.active ? local.runPath(run, what)
                                                   : `/api/runs/${encodeURIComponent(run.name)}/${what}`);

// An image as JSON pixels (C, H, W) in [0, 1], exactly the model's input size: what the canvas sends.
export const postPixels = (run, what, pixels) => (local.active ? local.post(run, what, {pixels}) : getJSON(runPath(run, what), {
  method: "POST", headers: {"Content-Type": "application/json", ...numbered()}, body: JSON.stringify({pixels}),
}));

// An image file's bytes (PNG, JPG …): the server prepares them as `juanji predict` prepares a file.
export const postImage = (run, what, blob) => (local.active ? local.post(run, what, blob) : getJSON(runPath(run, what), {
  method: "POST", headers: {"Content-Type": blob.type || "application/octet-stream", ...numbered()}, body: blob,
}));

const numbered = () => ({"Juanji-Page": PAGE, "Juanji-Sequence": String(++sequence)});

// The confusion matrix of a run's test set (GET /confusion), which the server evaluates in the background: asked
// with wait=no until it is done, onProgress(done, total) told meanwhile (total null while the set is read).
export async function confusionOf(run, onProgress) {
  if (local.active) return getJSON(runPath(run, "confusion"));
  for (;;) {
    const response = await api(`${runPath(run, "confusion")}?wait=no`);
    const answer = await response.json();
    if (response.status !== 202) return answer;
    onProgress(answer.evaluating.done, answer.evaluating.total);
    await new Promise((resolve) => setTimeout(resolve, EVALUATION_POLL_MS));
  }
}

// A convolution's weight, bias, groups and window (GET /kernels/L), and a Linear layer's weight and bias (GET
// /linear/L), asked once per run, checkpoint loaded (a run still training gets new weights) and layer: the inside
// view and the kernels section share the answer. A failed request is forgotten, so that it can be asked again.
const weights = new Map();                         // "path loads" → the promise of its answer

export const kernelOf = (run, layer) => weightsOf(run, `kernels/${encodeURIComponent(layer)}`);
export const linearOf = (run, layer) => weightsOf(run, `linear/${encodeURIComponent(layer)}`);

function weightsOf(run, what) {
  const path = runPath(run, what);
  const key = `${path} ${run.loads}`;
  if (!weights.has(key)) {
    weights.set(key, getJSON(path).catch((error) => { weights.delete(key); throw error; }));
  }
  return weights.get(key);
}
