// A convolution, or a pooling, to step through on the concept pages, as in CS231n's demo: a
// <div class="conv-widget" data-x="…" data-w="…"> becomes the input, the kernels and the output, a control
// for each setting, a window stepped over the output (buttons, arrow keys, a click), and the multiply-
// accumulate of the selected output written out channel by channel.
// The arrays are the page's own, as its juanji code makes and prints them (tests/docs/test_conv_widget.py
// re-runs the page and compares); the other settings are computed here, a direct sum per output, which the
// same test checks against juanji.
//
//   data-x          the input (1, C, H, W), JSON: the page's image, its batch axis included
//   data-w, data-b  the kernels (K, C, R, S) and the bias (K), JSON; without data-b, no bias
//   data-pool       "max" or "avg": a pooling of data-x instead (no kernels), each channel on its own
//   data-stride, data-padding, data-dilation, data-window: the settings of the page's code, shown first
// The labels follow the page's <html lang>; the Chinese ones are docs/glossary.zh.md's words.

const LABELS = {
  en: {
    stride: "stride", padding: "padding", dilation: "dilation", channels: "input channels", window: "window",
    pool: "pooling", max: "max", avg: "average", input: "input x", kernels: "kernels w", output: "output y",
    previous: "previous", next: "next", keys: "output y: the arrow keys move the window",
    terms: "the selected output, channel by channel",
    nofit: "no window fits: the padded input is smaller than the window",
  },
  zh: {
    stride: "步幅", padding: "填充", dilation: "空洞率", channels: "输入通道数", window: "窗口", pool: "池化",
    max: "最大", avg: "平均", input: "输入 x", kernels: "卷积核 w", output: "输出 y", previous: "上一步",
    next: "下一步", keys: "输出 y：方向键移动窗口", terms: "选中的输出，逐个通道",
    nofit: "放不下窗口：加上填充的输入比窗口还小",
  },
};
const CHOICES = {stride: [1, 2, 3], padding: [0, 1, 2], dilation: [1, 2]};
const range = (n) => Array.from({length: n}, (_, i) => i);
const sum = (values) => values.reduce((a, v) => a + v, 0);

// A number as the pages print it (NumPy, precision=3), with a minus sign; a negative factor in brackets.
function format(value) {
  const rounded = Math.round(value * 1000) / 1000;
  return (rounded < 0 ? "\u2212" : "") + String(Math.abs(rounded));
}
const factor = (value) => (format(value).startsWith("\u2212") ? `(${format(value)})` : format(value));

function element(tag, {text, ...attributes} = {}, children = []) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  if (text !== undefined) made.textContent = text;
  made.append(...children);
  return made;
}

// The shape of `value`, a `depth`-D array of finite numbers, rectangular; an Error naming `name` if not.
function shape(value, depth, name) {
  const dims = [];
  for (let level = value; dims.length < depth; level = level[0]) {
    if (!Array.isArray(level) || level.length === 0) throw new Error(`${name} is not a ${depth}-D array`);
    dims.push(level.length);
  }
  const regular = (a, d) => (d === depth ? typeof a === "number" && Number.isFinite(a)
    : Array.isArray(a) && a.length === dims[d] && a.every((b) => regular(b, d + 1)));
  if (!regular(value, 0)) throw new Error(`${name} is not a ${depth}-D array of numbers, all rows alike`);
  return dims;
}

function array(root, key, depth) {
  let value;
  try {
    value = JSON.parse(root.dataset[key]);
  } catch {
    throw new Error(`data-${key} is not JSON`);
  }
  return [value, shape(value, depth, `data-${key}`)];
}

// The widget's arrays, the choices of its controls and its first settings, from the data attributes, checked.
function read(root) {
  const [[x], [n, channels, height, width]] = array(root, "x", 4);
  if (n !== 1) throw new Error(`data-x holds ${n} images, not 1`);
  const choices = {...CHOICES, channels: range(channels).map((c) => c + 1),
                   window: range(Math.min(height, width)).map((k) => k + 1), pool: ["max", "avg"]};
  const state = {stride: 1, padding: 0, dilation: 1, channels, window: 2, pool: null, selected: [0, 0, 0]};
  for (const key of ["stride", "padding", "dilation", "window", "pool"]) {
    const text = root.dataset[key];
    if (text === undefined) continue;
    const value = key === "pool" ? text : Number(text);
    if (!choices[key].includes(value)) throw new Error(`data-${key} is ${text}, not one of ${choices[key]}`);
    state[key] = value;
  }
  if (state.pool) return {x, height, width, choices, state: {...state, padding: 0, dilation: 1}};
  const [w, [kernels, kernelChannels, kh, kw]] = array(root, "w", 4);
  if (kernelChannels !== channels) throw new Error(`data-w has ${kernelChannels} channels, data-x ${channels}`);
  const [b, [length]] = root.dataset.b === undefined ? [null, [kernels]] : array(root, "b", 1);
  if (length !== kernels) throw new Error(`data-b has ${length} numbers for ${kernels} kernels`);
  return {x, w, b, height, width, kh, kw, choices, state};
}

// The window (kh × kw) and the output (maps × rows × cols) at the current settings:
// H' = ⌊(H + 2P − D(R − 1) − 1)/S⌋ + 1, and the same along W.
function geometry({x, w, height, width, kh, kw, state: s}) {
  if (s.pool) [kh, kw] = [s.window, s.window];
  const out = (size, kernel) => Math.floor((size + 2 * s.padding - s.dilation * (kernel - 1) - 1) / s.stride) + 1;
  return {kh, kw, maps: s.pool ? x.length : w.length, rows: out(height, kh), cols: out(width, kw)};
}

// The arithmetic: every output, and the words for the selected one.
function compute(widget) {
  const {x, w, b, height, width, state: s} = widget, g = geometry(widget);
  const inside = (row, col) => row >= 0 && row < height && col >= 0 && col < width;
  const at = (c, row, col) => (inside(row, col) ? x[c][row][col] : 0);
  // the input pixels that output (i, j) reads: [r, q, row, col], row = i·S + r·D − P; outside x, padding
  const taps = (i, j) => range(g.kh * g.kw).map((t) => {
    const r = Math.floor(t / g.kw), q = t % g.kw;
    return [r, q, i * s.stride + r * s.dilation - s.padding, j * s.stride + q * s.dilation - s.padding];
  });
  // pooling: max or mean of the window in channel k; convolution: per input channel c,
  // Σ_r,q x[c, i·S + r·D − P, j·S + q·D − P] · w[k, c, r, q], then y[k, i, j] = Σ_c (that) + b[k]
  const pooled = (k, i, j) => taps(i, j).map(([, , row, col]) => at(k, row, col));
  const channelSums = (k, i, j) => range(s.channels).map((c) =>
    sum(taps(i, j).map(([r, q, row, col]) => at(c, row, col) * w[k][c][r][q])));
  const value = (k, i, j) => (s.pool === "max" ? Math.max(...pooled(k, i, j))
    : s.pool === "avg" ? sum(pooled(k, i, j)) / (g.kh * g.kw) : sum(channelSums(k, i, j)) + (b ? b[k] : 0));
  const y = g.rows > 0 && g.cols > 0 ? range(g.maps).map((k) => range(g.rows).map((i) =>
    range(g.cols).map((j) => value(k, i, j)))) : [];

  const name = (c, row, col) => (inside(row, col) ? `x[${c},${row},${col}]` : "0");
  function explain(k, i, j) {
    const window = taps(i, j), result = `y[${k},${i},${j}] = `;
    if (s.pool) {
      const names = window.map(([, , row, col]) => name(k, row, col)), values = pooled(k, i, j).map(format);
      const line = s.pool === "max" ? `max(${names.join(", ")}) = max(${values.join(", ")})`
        : `(${names.join(" + ")}) / ${window.length} = (${values.join(" + ")}) / ${window.length}`;
      return {lines: [[`${line} = ${format(y[k][i][j])}`]], sum: result + format(y[k][i][j])};
    }
    const sums = channelSums(k, i, j);
    const lines = sums.map((total, c) => [
      window.map(([r, q, row, col]) => `${name(c, row, col)}·w[${k},${c},${r},${q}]`).join(" + "),
      "= " + window.map(([r, q, row, col]) => `${factor(at(c, row, col))}·${factor(w[k][c][r][q])}`).join(" + ") +
        ` = ${format(total)}`]);
    const parts = [...sums.map(format), ...(b ? [factor(b[k])] : [])];
    return {lines, sum: result + (parts.length > 1 ? `${parts.join(" + ")} = ` : "") + format(y[k][i][j])};
  }
  const [k, i, j] = s.selected;
  const lit = new Set(y.length ? taps(i, j).map(([, , row, col]) => `${row},${col}`) : []);
  return {...g, y, lit, explain};
}

function grid(caption, rows, cols, cell, className = "cw-grid") {
  return element("table", {class: className}, [element("caption", {text: caption}),
    element("tbody", {}, range(rows).map((r) => element("tr", {}, range(cols).map((c) => cell(r, c)))))]);
}

// The output size, with the numbers in the formula the page gives.
function sizeLine({height, width, state: s}, {kh, kw, rows, cols}) {
  const line = (axis, size, kernel, out) => `${axis}′ = ⌊(${size} ` + (s.pool ? `− ${kernel}` :
    `+ 2·${s.padding} − ${s.dilation}·(${kernel} − 1) − 1`) + `) / ${s.stride}⌋ + 1 = ${Math.max(out, 0)}`;
  return height === width && kh === kw ? line("H′ = W", height, kh, rows)
    : `${line("H", height, kh, rows)}; ${line("W", width, kw, cols)}`;
}

function render(widget, view) {
  const {x, w, b, height, width, state: s} = widget, result = compute(widget);
  const {y, lit} = result, [k, i, j] = s.selected, labels = view.labels;
  const used = s.pool ? x.length : s.channels;
  view.input.replaceChildren(...range(used).map((c) => grid(`x[${c}]`, height + 2 * s.padding,
    width + 2 * s.padding, (r, q) => {
      const row = r - s.padding, col = q - s.padding;
      const outside = row < 0 || row >= height || col < 0 || col >= width;
      const on = (!s.pool || c === k) && lit.has(`${row},${col}`);
      return element("td", {text: outside ? "0" : format(x[c][row][col]),
                            class: [outside && "cw-pad", on && "cw-on"].filter(Boolean).join(" ")});
    })));
  if (!s.pool) {
    view.kernels.replaceChildren(...w.flatMap((kernel, n) => kernel.slice(0, used).map((weights, c) =>
      grid(`w[${n},${c}]`, widget.kh, widget.kw, (r, q) => element("td", {text: format(weights[r][q])}),
           n === k ? "cw-grid cw-on" : "cw-grid"))),
    ...(b ? [element("p", {text: `b = [${b.map(format).join(", ")}]`})] : []));
  }
  view.size.textContent = sizeLine(widget, result);
  view.output.replaceChildren(...(y.length ? y.map((map, n) => grid(`y[${n}]`, result.rows, result.cols, (r, q) => {
    const cell = element("td", {text: format(map[r][q]), class: n === k && r === i && q === j ? "cw-on" : ""});
    cell.addEventListener("click", () => select(widget, view, [n, r, q]));
    return cell;
  })) : [element("p", {text: labels.nofit})]));
  const {lines, sum: said} = y.length ? result.explain(k, i, j) : {lines: [], sum: labels.nofit};
  view.terms.setAttribute("start", s.pool ? k : 0);          // numbered by input channel
  view.terms.replaceChildren(...lines.map((texts) => element("li", {}, texts.flatMap((text, n) =>
    (n ? [element("br"), text] : [text])))));
  view.sum.textContent = said;
}

// Select output (k, i, j), brought inside the output's current size, and show it.
function select(widget, view, [k, i, j]) {
  const {maps, rows, cols} = geometry(widget), clamp = (v, n) => Math.min(Math.max(v, 0), Math.max(n, 1) - 1);
  widget.state.selected = [clamp(k, maps), clamp(i, rows), clamp(j, cols)];
  render(widget, view);
}

// One step in reading order over every output of every map, forwards (+1) or backwards (−1), around the end.
function step(widget, view, by) {
  const {maps, rows, cols} = geometry(widget), [k, i, j] = widget.state.selected, total = maps * rows * cols;
  if (rows < 1 || cols < 1) return;
  const n = (((k * rows + i) * cols + j + by) % total + total) % total;
  select(widget, view, [Math.floor(n / (rows * cols)), Math.floor(n / cols) % rows, n % cols]);
}

export function mount(root) {
  if (root.dataset.mounted !== undefined) return;
  root.dataset.mounted = "";
  const labels = LABELS[document.documentElement.lang.startsWith("zh") ? "zh" : "en"];
  let widget;
  try {
    widget = read(root);
  } catch (error) {
    root.replaceChildren(element("p", {class: "cw-error", text: `conv-widget: ${error.message}`}));
    return;
  }
  const s = widget.state;
  const view = {
    labels,
    size: element("p", {class: "cw-size"}),
    input: element("div", {class: "cw-maps"}),
    kernels: element("div", {class: "cw-maps"}),
    output: element("div", {class: "cw-maps cw-output", tabindex: 0, role: "group", "aria-label": labels.keys}),
    sum: element("p", {class: "cw-sum", "aria-live": "polite"}),
    terms: element("ol", {class: "cw-terms", "aria-label": labels.terms}),
  };
  const keys = s.pool ? ["window", "stride", "pool"]
    : ["stride", "padding", "dilation", ...(widget.choices.channels.length > 1 ? ["channels"] : [])];
  const controls = keys.map((key) => {
    const menu = element("select", {name: key}, widget.choices[key].map((v) =>
      element("option", {value: v, text: key === "pool" ? labels[v] : v})));
    menu.value = s[key];
    menu.addEventListener("change", () => {
      s[key] = key === "pool" ? menu.value : Number(menu.value);
      select(widget, view, s.selected);
    });
    return element("label", {}, [`${labels[key]} `, menu]);
  });
  view.output.addEventListener("keydown", (event) => {
    const [k, i, j] = s.selected;
    const along = {ArrowRight: 1, ArrowLeft: -1}[event.key], down = {ArrowDown: 1, ArrowUp: -1}[event.key];
    if (along) step(widget, view, along);
    else if (down) select(widget, view, [k, i + down, j]);
    else return;
    event.preventDefault();         // the arrow keys move the window, not the page
  });
  const button = (text, by) => {
    const made = element("button", {type: "button", class: "md-button", text});
    made.addEventListener("click", () => step(widget, view, by));
    return made;
  };
  const section = (title, body) => element("div", {class: "cw-section"}, [element("p", {text: title}), body]);
  root.replaceChildren(
    element("div", {class: "cw-controls"}, controls), view.size,
    element("div", {class: "cw-arrays"}, [section(labels.input, view.input),
      ...(s.pool ? [] : [section(labels.kernels, view.kernels)]), section(labels.output, view.output)]),
    element("div", {class: "cw-steps"}, [button(`◀ ${labels.previous}`, -1), button(`${labels.next} ▶`, 1)]),
    view.sum, view.terms);
  render(widget, view);
}

document$.subscribe(() => document.querySelectorAll(".conv-widget").forEach(mount));
