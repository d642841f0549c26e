// Colours, and arrays of numbers painted onto canvases: every picture on the page (the image, feature maps,
// kernels, heat maps) goes through paint(), and every map's colours are read off a colour bar (showScale).
import {t} from "./i18n.js";
import {element} from "./page.js";

// A colour bar is this many canvas pixels long and high, painted in this many steps from its low to its high end.
const BAR_WIDTH = 120, BAR_HEIGHT = 8, BAR_STEPS = 60;

export const clamp = (v) => Math.max(0, Math.min(1, v));
export const gray = (v) => [v * 255, v * 255, v * 255];

// "hot": black → red → yellow → white as v goes 0 → 1 (red rises over the first third, green the second, blue the last).
export const hot = (v) => [255 * clamp(3 * v), 255 * clamp(3 * v - 1), 255 * clamp(3 * v - 2)];

// Diverging: −1 blue, 0 white, +1 red (the two ends of ColorBrewer's RdBu scale).
const NEGATIVE = [33, 102, 172], POSITIVE = [178, 24, 43];
export function diverging(v) {
  const t = Math.min(1, Math.abs(v));
  return (v < 0 ? NEGATIVE : POSITIVE).map((c) => 255 + (c - 255) * t);
}

// The colour that text on a background [r, g, b] reads best in: black on a light background, white on a dark one,
// by WCAG 2's relative luminance L. Where L > 0.179 black contrasts more ((L + 0.05) / 0.05 against 1.05 / (L + 0.05));
// either way the contrast is at least 4.58:1, over the 4.5:1 that WCAG's AA asks of text.
export function inkOn(rgb) {
  const linear = rgb.map((c) => (c / 255 <= 0.03928 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4));
  const luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
  return luminance > 0.179 ? "#000" : "#fff";
}

// The smallest and largest number of nested arrays.
export function minMax(nested) {
  let low = Infinity, high = -Infinity;
  for (const v of nested.flat(Infinity)) { if (v < low) low = v; if (v > high) high = v; }
  return [low, high];
}

// The largest |value| of nested arrays (1 if all are 0): one scale symmetric about 0, for diverging colours.
export function largest(nested) {
  const [low, high] = minMax(nested);
  return Math.max(Math.abs(low), Math.abs(high)) || 1;
}

// Gray from the nested arrays' own min (black) to max (white): one scale for all of them.
export function grayFor(nested) {
  const [low, high] = minMax(nested);
  return (v) => gray(high > low ? (v - low) / (high - low) : 0);
}

// Paint rows (h × w numbers) onto a canvas, colour(value) → [r, g, b], each number a block of canvas pixels.
export function paint(canvas, rows, colour) {
  const h = rows.length, w = rows[0].length;
  const small = document.createElement("canvas");
  small.width = w; small.height = h;
  const ctx = small.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const [r, g, b] = colour(rows[i][j]);
      image.data.set([r, g, b, 255], 4 * (i * w + j));
    }
  }
  ctx.putImageData(image, 0, 0);
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = false;            // blocks, not blurred: every number stays visible
  out.clearRect(0, 0, canvas.width, canvas.height);
  out.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// An image (C, H, W) in [0, 1], gray (C = 1) or RGB (C = 3), onto a canvas.
export function paintImage(canvas, pixels) {
  if (pixels.length === 1) { paint(canvas, pixels[0], gray); return; }
  const rows = pixels[0].map((row, i) => row.map((_, j) => [0, 1, 2].map((c) => pixels[c][i][j])));
  paint(canvas, rows, (rgb) => rgb.map((v) => v * 255));
}

// A number as scales and ranges write it: 3 significant digits, powers of ten outside 0.001 … 9999 ("1.30e-5").
export function short(v) {
  if (v === 0) return "0";
  const size = Math.abs(v);
  return size >= 1e-3 && size < 1e4 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}

// A colour bar in `where`: colour(value) → [r, g, b] painted from scale[0] to scale[1], the two numbers at its ends
// and what they measure (unit). A map whose values all are 0 gets the plain word `zero` instead, not a black
// picture to decode; where the scale is fixed (values ≠ scale), the map's own range is written too.
export function showScale(where, colour, scale, unit, zero = t("scale.allZero"), values = scale) {
  const [low, high] = scale;
  Object.assign(where.dataset, {low, high, min: values[0], max: values[1]});
  where.classList.add("scale");
  where.classList.toggle("zero", values[0] === 0 && values[1] === 0);
  if (values[0] === 0 && values[1] === 0) { where.replaceChildren(element("span", "word", zero)); return; }
  const bar = element("canvas");
  bar.width = BAR_WIDTH; bar.height = BAR_HEIGHT;
  bar.setAttribute("aria-hidden", "true");      // the numbers beside it say what a screen reader needs
  const steps = Array.from({length: BAR_STEPS}, (_, n) => low + (high - low) * n / (BAR_STEPS - 1));
  paint(bar, [steps], colour);
  where.replaceChildren(element("span", "end", short(low)), bar, element("span", "end", short(high)),
                        element("span", "unit", unit));
  if (values !== scale) {
    where.append(element("span", "unit", t("scale.thisMap", {low: short(values[0]), high: short(values[1])})));
  }
}
