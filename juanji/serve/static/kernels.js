// The kernels section: every weight of one convolution, blue negative, white 0, red positive, one scale for the
// whole layer; one row per kernel and one column per input channel (a first layer's kernels side by side).
import {kernelOf} from "./api.js";
import {t} from "./i18n.js";
import {$, showError} from "./page.js";
import {diverging, largest} from "./paint.js";

const KERNEL_SIDE = 60;    // each kernel drawn about 60 screen pixels a side: a 5×5 kernel at 12 per weight …
const MIN_CELL = 2;        // … and never under 2 screen pixels per weight
const GAP = 1;             // kernels are a cell apart

let run = null;            // the run whose convolutions the menu lists

export function setupKernels() {
  $("kernel-layer").addEventListener("change", showKernels);
}

// A new run: its convolutions in the menu, the first one drawn.
export function showKernelChoices(newRun) {
  run = newRun;
  const layers = $("kernel-layer");
  layers.replaceChildren(...run.kernels.map((k) => new Option(`${k.name} ${k.shape.join("×")}`, k.name)));
  showKernels();
}

async function showKernels() {
  const name = $("kernel-layer").value;
  const where = $("kernel-grid");
  if (!name) { where.textContent = t("kernels.none"); return; }
  let weight;
  try { weight = (await kernelOf(run, name)).weight; } catch (error) { showError(where, error); return; }
  const grid = kernelGrid(weight);
  grid.setAttribute("role", "img");
  grid.setAttribute("aria-label", t("kernels.picture", {count: weight.length, layer: name, shape: [
    weight.length, weight[0].length, weight[0][0].length, weight[0][0][0].length].join("×")}));
  where.replaceChildren(grid);
}

// The weight (K, C, kh, kw) as one canvas of K × C kernels (1 × K when C = 1).
function kernelGrid(weight) {
  const m = largest(weight);
  const [kh, kw] = [weight[0][0].length, weight[0][0][0].length];
  const cell = Math.max(MIN_CELL, Math.floor(KERNEL_SIDE / Math.max(kh, kw)));
  const single = weight[0].length === 1;
  const [rows, columns] = single ? [1, weight.length] : [weight.length, weight[0].length];
  const canvas = document.createElement("canvas");
  canvas.width = columns * (kw + GAP) * cell; canvas.height = rows * (kh + GAP) * cell;
  const ctx = canvas.getContext("2d");
  weight.forEach((kernel, k) => kernel.forEach((plane, c) => plane.forEach((row, u) => row.forEach((v, x) => {
    const [r, col] = single ? [0, k] : [k, c];
    ctx.fillStyle = `rgb(${diverging(v / m).map(Math.round).join(",")})`;
    ctx.fillRect((col * (kw + GAP) + x) * cell, (r * (kh + GAP) + u) * cell, cell, cell);
  }))));
  return canvas;
}
