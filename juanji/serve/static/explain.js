// Why this class: saliency and Grad-CAM (in the answer of /analyze) and occlusion (a second request, the slow
// one), of the predicted class or the one chosen, the last two drawn over the image.
import {postPixels} from "./api.js";
import {$, showError} from "./page.js";
import {hot, minMax, paint, paintImage} from "./paint.js";

// A heat map lies over the image 60 % opaque: the heat reads first, the image still shows through.
const HEAT_OPACITY = 0.6;

let occlusionAsked = 0;    // the number of the latest occlusion asked for: a late answer to an older one is dropped

// onChoice: another class or Grad-CAM layer was chosen (the image needs a new analysis).
export function setupExplain(onChoice) {
  $("explain-class").addEventListener("change", onChoice);
  $("gradcam-layer").addEventListener("change", onChoice);
}

// A new run: its classes, and its layers with maps for Grad-CAM.
export function showExplainChoices(run) {
  $("explain-class").replaceChildren(new Option("the predicted class", ""),
    ...run.classes.map((c, i) => new Option(`${i} ${c}`, String(i))));
  $("gradcam-layer").replaceChildren(new Option("the last with maps", ""),
    ...run.layers.filter((l) => l.shape.length === 3).map((l) => new Option(`${l.name} ${l.type} ${l.shape.join("×")}`, l.name)));
}

// The query of /analyze for the class and Grad-CAM layer chosen: "class=C" and "&layer=L" if one is chosen.
export function explainQuery() {
  const layer = $("gradcam-layer").value;
  return `class=${encodeURIComponent($("explain-class").value)}${layer ? `&layer=${encodeURIComponent(layer)}` : ""}`;
}

// The explanation in an answer of /analyze, for the image of these pixels.
export function showExplanation(explanation, pixels) {
  paint($("saliency"), explanation.saliency, hot);
  if (!explanation.gradcam) { $("gradcam-note").textContent = "Grad-CAM needs a Sequential model"; return; }
  const cam = explanation.gradcam;
  overlayHeat($("gradcam"), pixels, explanation.gradcam_pixels, minMax(cam)[1]);
  $("gradcam-note").textContent = `Grad-CAM of “${explanation.name}” at layer ${explanation.gradcam_layer}: ReLU(Σ_k α_k A_k), ${
    cam.length}×${cam[0].length} cells ${explanation.gradcam_centred
      ? "placed on their receptive fields' centres" : "stretched over the image"}`;
}

// Occlusion: how far p(class) drops with a square of the mean pixel over each place, drawn over the image.
export async function showOcclusion(run, pixels) {
  const asked = ++occlusionAsked;
  let result;
  try {
    result = await postPixels(run, `occlusion?class=${encodeURIComponent($("explain-class").value)}`, pixels);
  } catch (error) {
    if (asked === occlusionAsked) showError($("occlusion-note"), error);
    return;
  }
  if (asked !== occlusionAsked) return;
  overlayHeat($("occlusion"), pixels, result.drop, minMax(result.drop)[1]);
  const lowest = Math.min(...result.map.flat());
  $("occlusion-note").textContent = `occlusion of “${result.name}”: p = ${result.probability.toFixed(3)}, down to ${
    lowest.toFixed(3)} with a ${result.size}×${result.size} square of the mean pixel (every ${result.stride} pixels)`;
}

// A heat map over the image: the image first, then the map, 0 … high from black to white through red and yellow.
function overlayHeat(canvas, pixels, values, high) {
  paintImage(canvas, pixels);
  const overlay = document.createElement("canvas");
  overlay.width = canvas.width; overlay.height = canvas.height;
  paint(overlay, values, (v) => hot(high > 0 ? v / high : 0));
  const ctx = canvas.getContext("2d");
  ctx.globalAlpha = HEAT_OPACITY; ctx.drawImage(overlay, 0, 0); ctx.globalAlpha = 1;
}
