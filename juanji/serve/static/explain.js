// Why this class: saliency and Grad-CAM (in the answer of /analyze) and occlusion (a second request, the slow
// one), of the predicted class or the one chosen, the last two drawn over the image; each with its colour bar.
import {postPixels} from "./api.js";
import {t} from "./i18n.js";
import {$, element, showError} from "./page.js";
import {diverging, hot, minMax, paint, paintImage, short, showScale} from "./paint.js";

// A heat map lies over the image 60 % opaque: the heat reads first, the image still shows through.
const HEAT_OPACITY = 0.6;
// What Grad-CAM computes, written the same in every language.
const GRADCAM = "ReLU(Σ_k α_k A_k)";

let occlusionAsked = 0;    // the number of the latest occlusion asked for: a late answer to an older one is dropped

// onChoice: another class or Grad-CAM layer was chosen (the image needs a new analysis).
export function setupExplain(onChoice) {
  $("explain-class").addEventListener("change", onChoice);
  $("gradcam-layer").addEventListener("change", onChoice);
}

// A new run: its classes, and its layers with maps for Grad-CAM.
export function showExplainChoices(run) {
  $("explain-class").replaceChildren(new Option(t("why.predicted"), ""),
    ...run.classes.map((c, i) => new Option(`${i} ${c}`, String(i))));
  $("gradcam-layer").replaceChildren(new Option(t("why.lastMaps"), ""),
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
  if (explanation.unavailable) {                   // a page exported without a server says why (local_api.js)
    for (const id of ["saliency", "gradcam"]) {
      $(id).getContext("2d").clearRect(0, 0, $(id).width, $(id).height);
      $(`${id}-scale`).replaceChildren(element("p", "note", explanation.unavailable));
    }
    return;
  }
  const most = explanation.saliency_max;
  paint($("saliency"), explanation.saliency, hot);                 // the API divides saliency by its maximum
  showScale($("saliency-scale"), (v) => hot(most ? v / most : 0), [0, most], t("saliency.unit"), t("saliency.zero"));
  if (!explanation.gradcam) { $("gradcam-note").textContent = t("gradcam.sequential"); return; }
  const cam = explanation.gradcam;
  const high = minMax(cam)[1];
  overlayHeat($("gradcam"), pixels, explanation.gradcam_pixels, (v) => hot(high > 0 ? v / high : 0), high > 0);
  const [name, layer] = [explanation.name, explanation.gradcam_layer];
  showScale($("gradcam-scale"), (v) => hot(high > 0 ? v / high : 0), [0, high], GRADCAM,
            t("gradcam.zero", {layer, name}));
  $("gradcam-note").textContent = t("gradcam.note", {name, layer, formula: GRADCAM, height: cam.length,
    width: cam[0].length, placed: explanation.gradcam_centred ? t("gradcam.centred") : t("gradcam.stretched")});
}

// The image changed: the occlusion on its way is of an older one, and is not drawn.
export function forgetOcclusion() {
  occlusionAsked++;
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
  showScale($("occlusion-scale"), diverging, [-1, 1], t("occlusion.unit"), t("occlusion.zero"), [low, high]);
  const lowest = Math.min(...result.map.flat()), highest = Math.max(...result.map.flat());
  $("occlusion-note").textContent = t("occlusion.note", {name: result.name, probability: result.probability.toFixed(3),
    size: result.size, stride: result.stride, low: short(lowest), high: short(highest)});
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
