// Why this class: saliency and Grad-CAM (in the answer of /analyze) and occlusion (a second request, the slow
// one), of the predicted class or the one chosen, the last two drawn over the image; each with its colour bar.
import {postPixels} from "./api.js";
import {$, showError} from "./page.js";
import {diverging, hot, minMax, paint, paintImage, short, showScale} from "./paint.js";

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

// The explanation in an answer of /analyze, for the image of these pixels. Saliency and Grad-CAM have no natural
// unit: each is drawn on its own scale, 0 … its maximum, and its bar says what that maximum is.
export function showExplanation(explanation, pixels) {
  const most = explanation.saliency_max;
  paint($("saliency"), explanation.saliency, hot);                 // the API divides saliency by its maximum
  showScale($("saliency-scale"), (v) => hot(most ? v / most : 0), [0, most], "|∂S_c/∂x|, x the network's input",
            "all 0: no pixel changes the score");
  if (!explanation.gradcam) { $("gradcam-note").textContent = "Grad-CAM needs a Sequential model"; return; }
  const cam = explanation.gradcam;
  const high = minMax(cam)[1];
  overlayHeat($("gradcam"), pixels, explanation.gradcam_pixels, (v) => hot(high > 0 ? v / high : 0), high > 0);
  showScale($("gradcam-scale"), (v) => hot(high > 0 ? v / high : 0), [0, high], "ReLU(Σ_k α_k A_k)",
            `all 0: nothing at layer ${explanation.gradcam_layer} speaks for “${explanation.name}”`);
  $("gradcam-note").textContent = `Grad-CAM of “${explanation.name}” at layer ${explanation.gradcam_layer}: ReLU(Σ_k α_k A_k), ${
    cam.length}×${cam[0].length} cells ${explanation.gradcam_centred
      ? "placed on their receptive fields' centres" : "stretched over the image"}`;
}

// Occlusion: how far p(class) drops (red) or rises (blue) with a square of the mean pixel over each place, drawn
// over the image on the one scale probabilities have: a change of 1 is the deepest colour, 0.01 barely shows.
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
  const [low, high] = minMax(result.change);
  overlayHeat($("occlusion"), pixels, result.change, diverging, low !== 0 || high !== 0);
  showScale($("occlusion-scale"), diverging, [-1, 1], "p − p occluded: red a drop, blue a rise",
            "all 0: no square changes p", [low, high]);
  const lowest = Math.min(...result.map.flat()), highest = Math.max(...result.map.flat());
  $("occlusion-note").textContent = `occlusion of “${result.name}”: p = ${result.probability.toFixed(3)}; with a ${
    result.size}×${result.size} square of the mean pixel over it (every ${result.stride} pixels) p is ${
    short(lowest)} … ${short(highest)}`;
}

// A heat map over the image: the image first, then (unless the map is all 0) the map in colour(value).
function overlayHeat(canvas, pixels, values, colour, any) {
  paintImage(canvas, pixels);
  if (!any) return;
  const overlay = document.createElement("canvas");
  overlay.width = canvas.width; overlay.height = canvas.height;
  paint(overlay, values, colour);
  const ctx = canvas.getContext("2d");
  ctx.globalAlpha = HEAT_OPACITY; ctx.drawImage(overlay, 0, 0); ctx.globalAlpha = 1;
}
