// The drawing canvas and the image it holds: strokes in white on black, an uploaded file shown there, and the
// pixels (C, H, W) in [0, 1] it makes. The canvas is `block` canvas pixels per input pixel; the average of
// each block is one pixel of the image. Another run keeps the image (resampled where its input size differs).
// The keyboard draws too: an arrow key draws one input pixel on from the pen (at first the centre), Shift and an
// arrow key move the pen without drawing, Enter or Space ends the stroke, as lifting the mouse button does.
import {t} from "./i18n.js";
import {$, arrow, presses} from "./page.js";

const draw = $("draw");

// About this many canvas pixels a side: the size index.html gives the canvas (280 = 10 per pixel of a
// 28×28 image); each run rounds it to a whole number of canvas pixels per input pixel.
const DRAW_SIDE = draw.width;
// A stroke's width, in input pixels: wide enough to stay white after the block average (a 1-pixel line
// falls across two blocks and turns gray), narrow enough to draw details at 28×28.
const BRUSH_WIDTH = 2.6;
// Pixels go to the server rounded to 4 decimals: finer than an 8-bit image's steps (1/255 ≈ 0.004), and a
// shorter request while drawing.
const PIXEL_DECIMALS = 4;
// Gray from red, green and blue: the luma weights of ITU-R BT.601, L = 0.299 R + 0.587 G + 0.114 B, the
// weights of Pillow's convert("L"), which the server uses to make an upload gray for a gray model
// (juanji.data.images.load_image). The canvas only holds grays (R = G = B), and then L = R.
const LUMA = [0.299, 0.587, 0.114];

let shape = null;          // the model's input (C, H, W)
let block = 1;             // canvas pixels per input pixel
let stroke = null;         // the last point of the stroke being drawn; null between strokes
let pen = null;            // where the keyboard's pen is, in canvas pixels; null: at the centre
let keyed = false;         // the arrow keys have drawn a stroke that has not ended yet

// Listen to the mouse, the Clear button and the file input. onDraw: the image changed in a stroke;
// onStrokeEnd: a stroke ended or the canvas was cleared; onFile(file, description): an image file was chosen.
export function setupCanvas({onDraw, onStrokeEnd, onFile}) {
  draw.addEventListener("pointerdown", (event) => {
    draw.setPointerCapture(event.pointerId);
    stroke = pointAt(event);
    $("source").textContent = t("source.drawing");
    line(stroke, stroke);
    onDraw();
  });
  draw.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    const point = pointAt(event);
    line(stroke, point);
    stroke = point;
    onDraw();
  });
  draw.addEventListener("pointerup", () => { if (stroke) { stroke = null; onStrokeEnd(); } });
  draw.addEventListener("keydown", (event) => {
    const step = arrow(event);
    if (step) {
      event.preventDefault();
      pen ??= [draw.width / 2, draw.height / 2];
      const to = pen.map((v, axis) => Math.max(0, Math.min([draw.width, draw.height][axis], v + step[axis] * block)));
      if (!event.shiftKey) {
        $("source").textContent = t("source.drawing");
        line(pen, to);
        keyed = true;
        onDraw();
      }
      pen = to;
    } else if (presses(event) && keyed) {
      event.preventDefault();
      keyed = false;
      onStrokeEnd();
    }
  });
  draw.addEventListener("blur", () => { if (keyed) { keyed = false; onStrokeEnd(); } });
  $("clear").addEventListener("click", () => {
    blank();
    $("source").textContent = t("source.cleared");
    onStrokeEnd();
  });
  $("upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) onFile(file, t("source.file", {file: file.name}));
    event.target.value = "";
  });
}

// The canvas for a model taking inputs of inputShape (C, H, W), holding the image it held (the same pixels for
// the same input size; stretched onto the new blocks for another).
export function newCanvas(inputShape) {
  const held = copy(draw, draw.width, draw.height);
  shape = inputShape;
  block = blockFor(shape);
  pen = null;
  draw.width = shape[2] * block; draw.height = shape[1] * block;
  blank();
  draw.getContext("2d").drawImage(held, 0, 0, draw.width, draw.height);
}

// Canvas pixels per input pixel for an input (C, H, W): about DRAW_SIDE a side.
const blockFor = ([, h, w]) => Math.max(1, Math.round(DRAW_SIDE / Math.max(h, w)));

// A new canvas of width × height holding `canvas` stretched onto it.
function copy(canvas, width, height) {
  const made = document.createElement("canvas");
  made.width = width; made.height = height;
  made.getContext("2d").drawImage(canvas, 0, 0, width, height);
  return made;
}

function blank() {
  const ctx = draw.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, draw.width, draw.height);
}

function pointAt(event) {
  const box = draw.getBoundingClientRect();
  return [(event.clientX - box.left) * draw.width / box.width, (event.clientY - box.top) * draw.height / box.height];
}

// A line of the brush from one point to another (a dot where they are the same), in canvas pixels.
function line(from, to) {
  const ctx = draw.getContext("2d");
  ctx.strokeStyle = "#fff"; ctx.lineWidth = BRUSH_WIDTH * block; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
}

// The canvas as the image (C, H, W) in [0, 1]: each block's average, gray by LUMA for a gray model; by default
// the run's input size, or (to compare with another run) inputShape, the canvas stretched to its blocks.
export function canvasPixels(inputShape = shape) {
  const [c, h, w] = inputShape;
  const size = blockFor(inputShape);
  const same = size === block && h === shape[1] && w === shape[2];
  const source = same ? draw : copy(draw, w * size, h * size);
  return blockMeans(source, c, size);
}

// The average of each size × size block of a canvas, per channel c, in [0, 1].
function blockMeans(source, c, size) {
  const [h, w] = [source.height / size, source.width / size];
  const data = source.getContext("2d").getImageData(0, 0, source.width, source.height).data;
  const value = (k, channel) => (c === 1 ? LUMA[0] * data[k] + LUMA[1] * data[k + 1] + LUMA[2] * data[k + 2]
                                         : data[k + channel]);
  const blockMean = (channel, i, j) => {
    let sum = 0;
    for (let u = 0; u < size; u++) {
      for (let v = 0; v < size; v++) sum += value(4 * ((i * size + u) * source.width + j * size + v), channel);
    }
    return sum / (size * size) / 255;
  };
  const round = (v) => Math.round(v * 10 ** PIXEL_DECIMALS) / 10 ** PIXEL_DECIMALS;
  return Array.from({length: c}, (_, channel) => Array.from({length: h}, (_, i) =>
    Array.from({length: w}, (_, j) => round(blockMean(channel, i, j)))));
}

// Show an image (C, H, W) in [0, 1] on the canvas, one block per pixel, and say where it comes from.
export function showPixels(pixels, description) {
  blank();
  const ctx = draw.getContext("2d");
  pixels[0].forEach((row, i) => row.forEach((_, j) => {
    const rgb = pixels.length === 1 ? [0, 0, 0].map(() => pixels[0][i][j]) : [0, 1, 2].map((c) => pixels[c][i][j]);
    ctx.fillStyle = `rgb(${rgb.map((v) => Math.round(v * 255)).join(",")})`;
    ctx.fillRect(j * block, i * block, block, block);
  }));
  $("source").textContent = description;
}
