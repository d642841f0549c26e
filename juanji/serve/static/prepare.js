// An image file made into the pixels (C, H, W) in [0, 1] a run takes, in the browser, exactly as `juanji predict`
// prepares a file (juanji.trained.TrainedModel.prepare), for a page exported without a server (local_api.js).
// Pillow's steps are redone as Pillow computes them, so that the page and `juanji predict` feed the network the
// same numbers: gray by its integer luma, the centre cut out and resized with its antialiased bilinear filter in
// 8-bit fixed point (libImaging/Resample.c), or for a centred photo (juanji.data.photo) in float32.

// Larger images are refused, as the server refuses them (juanji.serve.inputs.MAX_PIXELS).
const MAX_PIXELS = 4096 * 4096;
// Pillow resamples 8-bit images with coefficients in fixed point of this many bits (32 − 8 − 2).
const PRECISION = 2 ** 22;
// juanji.data.photo: the outer 5 % of each side is the background; pixels above 0.2 (a float32) the object.
const BORDER = 0.05, OBJECT = Math.fround(0.2);
// Pillow's gray from red, green and blue: L = (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16 (ITU-R 601 in integers).
const LUMA = [19595, 38470, 7471];

// pixels (C, H, W) of an image file for `run` (its input_shape and normalization); invert "auto", "yes" or "no"
// and center as `juanji predict --invert --center`. Transparent pixels are read as the browser draws them (black
// where Pillow would keep the colour behind), the one way this can differ from juanji predict.
export async function prepareImage(blob, run, invert, center) {
  const [channels, height, width] = run.input_shape;
  if (center && (channels !== 1 || height !== width)) {
    throw new Error(`centring prepares a photo for a grayscale model with square inputs; this one takes ${
      channels}×${height}×${width}`);
  }
  const image = await decode(blob);
  const trainedDark = run.normalization !== null && mean(run.normalization[0]) < 0.5;
  const inverts = (planes) => invert === "yes" || (invert === "auto" && trainedDark
                                                   && backgroundLevel(channelMean(planes)) > 0.5);
  if (center) {
    const photo = scaled(gray(image));
    return [nested(preparePhoto(photo, height, inverts([photo])))];
  }
  const box = fitBox(image.w, image.h, width, height).map(Math.fround);
  const same = image.w === width && image.h === height;           // Pillow copies the image then
  const planes = (channels === 1 ? [gray(image)] : [0, 1, 2].map((c) => band(image, c)))
    .map((p) => scaled(same ? p : resample(p, width, height, box, true)));
  const flip = inverts(planes);
  return planes.map((plane) => nested(flip ? map(plane, (v) => Math.fround(1 - v)) : plane));
}

// The image's pixels as the browser decodes them, its EXIF orientation applied: {w, h, rgba}.
async function decode(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {imageOrientation: "from-image", premultiplyAlpha: "none",
                                            colorSpaceConversion: "none"});
  } catch (error) {
    throw new Error("not an image file the browser can read (PNG, JPG, BMP, GIF ...)");
  }
  const [w, h] = [bitmap.width, bitmap.height];
  if (w * h > MAX_PIXELS) {
    throw new Error(`image of ${w}×${h} pixels is too large (at most ${MAX_PIXELS.toLocaleString("en")} pixels)`);
  }
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  ctx.drawImage(bitmap, 0, 0);
  return {w, h, rgba: ctx.getImageData(0, 0, w, h).data};
}

// A plane {w, h, data}: one channel, row by row.
const plane = (w, h, data) => ({w, h, data});
const map = ({w, h, data}, f) => plane(w, h, data.map(f));

function gray({w, h, rgba}) {
  const data = new Uint8Array(w * h);
  for (let n = 0; n < w * h; n++) {
    data[n] = (LUMA[0] * rgba[4 * n] + LUMA[1] * rgba[4 * n + 1] + LUMA[2] * rgba[4 * n + 2] + 0x8000) >> 16;
  }
  return plane(w, h, data);
}

function band({w, h, rgba}, c) {
  return plane(w, h, Uint8Array.from({length: w * h}, (_, n) => rgba[4 * n + c]));
}

// 0 … 255 → float32 in [0, 1], as uint8 / float32(255).
const scaled = (p) => plane(p.w, p.h, Float32Array.from(p.data, (v) => Math.fround(v / 255)));

// The mean over channels of each pixel, in float32 as NumPy sums them.
function channelMean(planes) {
  if (planes.length === 1) return planes[0];
  const {w, h} = planes[0];
  return plane(w, h, Float32Array.from({length: w * h}, (_, n) => Math.fround(
    planes.reduce((sum, p) => Math.fround(sum + p.data[n]), 0) / planes.length)));
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

// ImageOps.fit's box (left, top, right, bottom): the largest centred part of a w × h image of the aspect of the
// output, in Python floats.
function fitBox(w, h, outW, outH) {
  const live = w / h, wanted = outW / outH;
  const [cropW, cropH] = live === wanted ? [w, h] : live >= wanted ? [wanted * h, h] : [w, w / wanted];
  const left = (w - cropW) * 0.5, top = (h - cropH) * 0.5;
  return [left, top, left + cropW, top + cropH];
}

// Pillow's ImagingResample with the bilinear filter: box (float32) of the plane to outW × outH, a horizontal and a
// vertical pass, each only where Pillow's own test says it is needed; eightBit: fixed point, clipped to 0 … 255
// after each pass, else float32. Pillow 13 makes the vertical pass first where the height loses more than twice
// as many pixels as the width (its ImagingResampleInner); the order changes the rounding between the passes.
function resample(p, outW, outH, box, eightBit) {
  let {w, h, data} = p;
  const horizontal = () => {
    data = pass(data, w, h, outW, coefficients(w, box[0], box[2], outW), true, eightBit);
    w = outW;
  };
  const vertical = () => {
    data = pass(data, w, h, outH, coefficients(h, box[1], box[3], outH), false, eightBit);
    h = outH;
  };
  const passes = [outW !== w || box[0] !== 0 || box[2] !== outW ? horizontal : null,
                  outH !== h || box[1] !== 0 || box[3] !== outH ? vertical : null];
  if (h - outH > 0 && h - outH > 2 * (w - outW)) passes.reverse();
  passes.forEach((step) => step?.());
  return plane(w, h, data);
}

const bilinear = (x) => Math.max(0, 1 - Math.abs(x));

// Pillow's precompute_coeffs: for each output position, the first input read and the normalised weights,
// the filter widened by the scale when shrinking (antialiasing).
function coefficients(inSize, in0, in1, outSize) {
  const scale = Math.fround(in1 - in0) / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;                 // the bilinear filter reaches 1 input pixel, times the scale
  return Array.from({length: outSize}, (_, o) => {
    const center = in0 + (o + 0.5) * scale;
    const first = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - first;
    const weights = Array.from({length: count}, (_, x) => bilinear((x + first - center + 0.5) / filterScale));
    const total = weights.reduce((a, b) => a + b, 0);
    return {first, weights: total !== 0 ? weights.map((k) => k / total) : weights};
  });
}

// One pass along rows (horizontal) or columns: out[o] = Σ_x weight[x] · in[first + x].
function pass(data, w, h, outSize, coefficient, horizontal, eightBit) {
  const [outW, outH] = horizontal ? [outSize, h] : [w, outSize];
  const out = eightBit ? new Uint8Array(outW * outH) : new Float32Array(outW * outH);
  const fixed = eightBit && coefficient.map(({weights}) => weights.map((k) => Math.trunc(
    k < 0 ? k * PRECISION - 0.5 : k * PRECISION + 0.5)));
  for (let i = 0; i < outH; i++) {
    for (let j = 0; j < outW; j++) {
      const o = horizontal ? j : i;
      const {first, weights} = coefficient[o];
      const at = (x) => (horizontal ? data[i * w + first + x] : data[(first + x) * w + j]);
      let sum = eightBit ? PRECISION / 2 : 0;
      for (let x = 0; x < weights.length; x++) sum += at(x) * (eightBit ? fixed[o][x] : weights[x]);
      out[i * outW + j] = eightBit ? Math.max(0, Math.min(255, Math.floor(sum / PRECISION))) : sum;
    }
  }
  return out;
}

// juanji.data.photo.prepare_photo(photo, size, invert, center=True) of a float32 plane in [0, 1]: inverted, the
// background stretched to 0 and the brightest pixel to 1, cut to the object on a black square, resized.
function preparePhoto(photo, size, invert) {
  let p = invert ? map(photo, (v) => Math.fround(1 - v)) : photo;
  const low = backgroundLevel(p), high = p.data.reduce((a, b) => Math.max(a, b), -Infinity);
  if (high - low > 1e-6) {
    const range = Math.fround(high - low);
    p = map(p, (v) => Math.min(1, Math.max(0, Math.fround(Math.fround(v - low) / range))));
  }
  p = centredSquare(p);
  const resized = p.w === size && p.h === size ? p : resample(p, size, size, [0, 0, p.w, p.h], false);
  return map(resized, (v) => Math.min(1, Math.max(0, v)));
}

// juanji.data.photo.background_level: the median of the outer BORDER frame (at least one pixel wide).
function backgroundLevel({w, h, data}) {
  const width = Math.max(1, roundHalfEven(BORDER * Math.min(h, w)));
  const frame = [];
  const take = (rows, columns) => {
    for (let i = Math.max(0, rows[0]); i < Math.min(h, rows[1]); i++) {
      for (let j = Math.max(0, columns[0]); j < Math.min(w, columns[1]); j++) frame.push(data[i * w + j]);
    }
  };
  take([0, width], [0, w]); take([h - width, h], [0, w]);
  take([width, h - width], [0, width]); take([width, h - width], [w - width, w]);
  frame.sort((a, b) => a - b);
  const middle = frame.length >> 1;
  return frame.length % 2 ? frame[middle] : Math.fround(Math.fround(frame[middle - 1] + frame[middle]) / 2);
}

// Python's round(): halves to the even neighbour.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// juanji.data.photo._centred_square: the object's bounding box in the middle of a black square of its longer side.
function centredSquare(p) {
  let [top, bottom, left, right] = [Infinity, -1, Infinity, -1];
  p.data.forEach((v, n) => {
    if (v <= OBJECT) return;
    const [i, j] = [Math.floor(n / p.w), n % p.w];
    top = Math.min(top, i); bottom = Math.max(bottom, i); left = Math.min(left, j); right = Math.max(right, j);
  });
  if (bottom < 0) return p;
  const [boxH, boxW] = [bottom - top + 1, right - left + 1];
  const side = Math.max(boxH, boxW);
  const square = new Float32Array(side * side);
  const [y, x] = [Math.floor((side - boxH + 1) / 2), Math.floor((side - boxW + 1) / 2)];
  for (let i = 0; i < boxH; i++) {
    for (let j = 0; j < boxW; j++) square[(y + i) * side + x + j] = p.data[(top + i) * p.w + left + j];
  }
  return plane(side, side, square);
}

// A plane as rows of numbers, the form the page's pixels take.
const nested = ({w, h, data}) => Array.from({length: h}, (_, i) => Array.from(data.subarray(i * w, (i + 1) * w)));
