// Talking to the server: the JSON API under /api/ (docs/reference/serve-api.md), so whatever the page shows a
// script can fetch too. An answer that is not OK becomes an Error with the server's message ({"error": "..."}).

const BUSY_TRIES = 10;     // a 503 says the server's image workers are busy: asked again after Retry-After seconds

async function api(path, options) {
  let response = await fetch(path, options);
  for (let tries = 1; response.status === 503 && tries < BUSY_TRIES; tries++) {
    const seconds = Number(response.headers.get("Retry-After")) || 1;
    await new Promise((resolve) => setTimeout(resolve, 1000 * seconds));
    response = await fetch(path, options);
  }
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error; } catch (e) { /* not JSON: keep the status text */ }
    throw new Error(message);
  }
  return response;
}

export const getJSON = async (path, options) => (await api(path, options)).json();
export const getBlob = async (path) => (await api(path)).blob();

// The path of one of a run's routes: runPath(run, "predict") → /api/runs/NAME/predict.
export const runPath = (run, what) => `/api/runs/${encodeURIComponent(run.name)}/${what}`;

// An image as JSON pixels (C, H, W) in [0, 1], exactly the model's input size: what the canvas sends.
export const postPixels = (run, what, pixels) => getJSON(runPath(run, what), {
  method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({pixels})});

// An image file's bytes (PNG, JPG …): the server prepares them as `juanji predict` prepares a file.
export const postImage = (run, what, blob) => getJSON(runPath(run, what), {
  method: "POST", headers: {"Content-Type": blob.type || "application/octet-stream"}, body: blob});

// A convolution's weight, bias, groups and window (GET /kernels/L), asked once per run and layer: the inside
// view and the kernels section share the answer. A failed request is forgotten, so that it can be asked again.
const kernels = new Map();                         // path → the promise of its answer

export function kernelOf(run, layer) {
  const path = runPath(run, `kernels/${encodeURIComponent(layer)}`);
  if (!kernels.has(path)) {
    kernels.set(path, getJSON(path).catch((error) => { kernels.delete(path); throw error; }));
  }
  return kernels.get(path);
}
