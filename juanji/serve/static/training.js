// Training: the loss, accuracy and learning-rate curves of every run, one row of charts per run (each chart on its
// own scale, with ticks), re-read every few seconds so that they follow a `juanji train` still writing
// metrics.jsonl; the confusion matrix on the test set; and its mistakes, a page at a time, which open in the
// inside view.
import {confusionOf, getBlob, getJSON, runPath} from "./api.js";
import {integer, percent, t} from "./i18n.js";
import {$, element, keyboardGroup, showError} from "./page.js";
import {inkOn, short} from "./paint.js";

// metrics.jsonl is re-read every 3 s: an epoch takes far longer, and a new point appears soon enough.
const POLL_EVERY_MS = 3000;
// One colour per run (Material Design's dark shades, distinct on white, each 5:1 or more against it: the legend
// writes the runs' names in them), again from the first past six runs.
const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#6d4c41", "#00695c"];
const CHART = {width: 300, height: 190};
// A chart's margins in screen pixels: room for the tick labels on the left (10 px text like "0.0005") and for
// the epochs below.
const MARGIN = {left: 44, right: 8, top: 10, bottom: 30};
const TICKS = 5;           // about this many ticks on an axis, at round values (1, 2 or 5 × a power of ten)
const POINT_RADIUS = 2.5;  // one dot per epoch, in screen pixels
const MISTAKES_PER_PAGE = 60; // misclassified images drawn at once: a page, with buttons to the others
// A cell's colour: the diagonal blue (COLOURS[0]) as deep as its share of the row; a mistake red (COLOURS[1]),
// full at a quarter of its row: mistakes are rare, and a few must still show. Its count in black or white,
// whichever reads on it (paint.inkOn).
const RIGHT_RGB = [21, 101, 192], WRONG_RGB = [198, 40, 40];
const MISTAKE_GAIN = 4;
// The charts of each run: what they plot of metrics.jsonl; a dashed line is the training set's.
const METRICS = [{title: t("chart.loss"), lines: [["test_loss", false], ["train_loss", true]]},
                 {title: t("chart.accuracy"), lines: [["test_accuracy", false], ["train_accuracy", true]]},
                 {title: t("chart.lr"), lines: [["lr", false]]}];

let runs = [];             // every run served (kept up to date by app.js), one row of curves each but those skipped
let drawn = null;          // the metrics last drawn (as JSON text): the charts change only when they do
let run = null;            // the run whose test set the confusion matrix is of
let openImage = null;      // openImage(blob, description): look inside the network at a test image

// allRuns: the runs of GET /api/runs; open: what clicking a misclassified image does.
export function setupTraining(allRuns, open) {
  runs = allRuns;
  openImage = open;
  $("load-confusion").addEventListener("click", showConfusion);
  pollMetrics();
  setInterval(pollMetrics, POLL_EVERY_MS);
}

// A new run: its confusion matrix is not computed until asked for (it evaluates the whole test set).
export function resetConfusion(newRun) {
  run = newRun;
  $("confusion").replaceChildren(); $("misclassified").replaceChildren(); $("mistake-pages").replaceChildren();
  $("accuracy").textContent = ""; $("wrong-filter").textContent = "";
  const button = $("load-confusion");
  button.hidden = false; button.disabled = false; button.textContent = t("confusion.evaluate");
}

// ---- curves ----------------------------------------------------------------------------------------------
async function pollMetrics() {
  const curved = runs.filter((r) => r.state !== "skipped");
  let fetched;
  try {
    fetched = await Promise.all(curved.map((r) => getJSON(runPath(r, "metrics"))));
  } catch (error) { showError($("legend"), error); return; }
  const text = JSON.stringify([curved.map((r) => r.name), fetched]);
  if (text === drawn) return;
  drawn = text;
  $("curves").replaceChildren(...curved.map((r, n) => {
    const colour = COLOURS[n % COLOURS.length];
    const row = element("div", "row curves");
    row.dataset.run = r.name;
    const name = element("h3", "", r.name);
    name.style.color = colour;
    if (fetched[n].note) {                        // a lone checkpoint: no curves, and the page says so
      row.append(name, element("p", "note", fetched[n].note));
      return row;
    }
    row.append(name, ...METRICS.map(({title, lines}) => {
      const panel = element("div", "panel");
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("width", CHART.width); svg.setAttribute("height", CHART.height);
      svg.setAttribute("role", "img"); svg.setAttribute("aria-label", `${r.name}: ${title}`);
      svg.dataset.metric = lines[0][0];
      panel.append(element("h3", "", title), svg);
      chart(svg, lines.map(([key, dashed]) => ({
        colour, dashed,
        points: fetched[n].epochs.map((m) => [m.epoch, m[key]]).filter((p) => typeof p[1] === "number"),
      })), t("chart.empty", {metric: lines[0][0]}));
      return panel;
    }));
    return row;
  }));
  showLegend(curved, fetched);
}

function showLegend(curved, fetched) {
  const legend = $("legend");
  legend.replaceChildren(...curved.map((r, n) => {
    const last = fetched[n].epochs.at(-1);
    const words = {run: r.name, epochs: fetched[n].epochs.length};
    const said = last ? t("legend.accuracy", {...words, accuracy: percent(last.test_accuracy, 2)})
                      : t("legend.run", words);
    const span = element("span", "", `${said}   `);
    span.style.color = COLOURS[n % COLOURS.length];
    return span;
  }));
  legend.append(t("legend.note"));
}

// About TICKS round values from low to high: multiples of a step of 1, 2 or 5 × a power of ten.
function ticks(low, high, count = TICKS) {
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = power * [1, 2, 5, 10].find((f) => f * power >= raw);
  const values = [];
  for (let n = Math.ceil(low / step - 1e-9); n * step <= high + 1e-9 * step; n++) {
    values.push(Number((n * step).toPrecision(12)));
  }
  return {step, values};
}

// Lines of [epoch, value] points on an <svg>: series [{colour, dashed, points}], on one scale from the lowest to
// the highest of their values widened to round ticks; `none` is written where there is no point at all.
function chart(svg, series, none) {
  const W = CHART.width, H = CHART.height;
  const all = series.flatMap((s) => s.points);
  const add = (tag, attributes, text) => {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [a, v] of Object.entries(attributes)) e.setAttribute(a, v);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  if (!all.length) { add("text", {x: MARGIN.left, y: H / 2}, none); return; }
  let [ylow, yhigh] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (yhigh === ylow) { const pad = Math.abs(ylow) / 10 || 0.5; ylow -= pad; yhigh += pad; }
  const {step} = ticks(ylow, yhigh);
  [ylow, yhigh] = [Math.floor(ylow / step + 1e-9) * step, Math.ceil(yhigh / step - 1e-9) * step];
  const xmax = Math.max(...all.map((p) => p[0]), 1);
  const [left, right, top, bottom] = [MARGIN.left, W - MARGIN.right, MARGIN.top, H - MARGIN.bottom];
  const X = (x) => left + (right - left) * x / xmax, Y = (y) => bottom - (bottom - top) * (y - ylow) / (yhigh - ylow);
  for (const y of ticks(ylow, yhigh).values) {
    add("line", {x1: left, y1: Y(y), x2: right, y2: Y(y), stroke: "#eee"});
    add("text", {x: left - 4, y: Y(y) + 3, "text-anchor": "end", class: "tick y"}, short(y));
  }
  for (const x of ticks(0, xmax, Math.min(TICKS, xmax)).values.filter(Number.isInteger)) {
    add("line", {x1: X(x), y1: bottom, x2: X(x), y2: bottom + 4, stroke: "#999"});
    add("text", {x: X(x), y: bottom + 14, "text-anchor": "middle", class: "tick x"}, String(x));
  }
  add("line", {x1: left, y1: bottom, x2: right, y2: bottom, stroke: "#999"});
  add("line", {x1: left, y1: top, x2: left, y2: bottom, stroke: "#999"});
  add("text", {x: (left + right) / 2, y: H - 2, "text-anchor": "middle"}, t("chart.epoch"));
  for (const s of series.filter((s) => s.points.length)) {
    add("polyline", {points: s.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" "), fill: "none",
                     stroke: s.colour, "stroke-width": 2, "stroke-dasharray": s.dashed ? "5 3" : ""});
    for (const p of s.points) add("circle", {cx: X(p[0]), cy: Y(p[1]), r: POINT_RADIUS, fill: s.colour});
  }
}

// ---- the confusion matrix and the mistakes ---------------------------------------------------------------
async function showConfusion() {
  const asked = run;
  const button = $("load-confusion");
  button.disabled = true; button.textContent = t("confusion.evaluating");
  const progress = (done, total) => {              // "evaluating… 40 %" while the server evaluates
    if (asked === run && total) button.textContent = t("confusion.progress", {percent: percent(done / total, 0)});
  };
  let result;
  try { result = await confusionOf(asked, progress); } catch (error) {
    if (asked === run) showError($("misclassified"), error);
    return;
  }
  if (asked !== run) return;                       // another run was chosen while this one was evaluated
  button.hidden = true;
  $("accuracy").textContent = t("confusion.accuracy", {accuracy: percent(result.accuracy, 2),
                                                       count: integer(result.count)});
  const table = $("confusion");                    // a grid (index.html): headers scoped, cells by keyboard
  table.replaceChildren();
  const head = table.insertRow();
  const header = (text, scope, className = "") => Object.assign(element("th", className, text), {scope});
  head.appendChild(header(t("confusion.corner"), "col"));
  result.classes.forEach((_, j) => head.appendChild(header(String(j), "col")));
  result.matrix.forEach((row, i) => {
    const tr = table.insertRow();
    tr.appendChild(header(`${i} ${result.classes[i]}`, "row", "rowname"));
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const td = tr.insertCell();
      const f = count / total;
      const [tint, depth] = i === j ? [RIGHT_RGB, f] : [WRONG_RGB, Math.min(1, MISTAKE_GAIN * f)];
      const background = tint.map((c) => 255 + (c - 255) * depth);          // the tint over the panel's white
      td.textContent = count;
      td.style.background = `rgb(${background.join(", ")})`;
      td.style.color = inkOn(background);
      td.title = t("confusion.cell", {true: result.classes[i], predicted: result.classes[j], count});
      td.addEventListener("click", () => showMistakes(asked, result, i === j ? null : [i, j]));
    });
  });
  keyboardGroup([...table.querySelectorAll("td")], result.classes.length);
  showMistakes(asked, result, null);
}

// The misclassified test images, all or (filter [true, predicted]) those of one cell of the matrix, page by page
// (page 0 first), with buttons to the pages before and after.
function showMistakes(asked, result, filter, page = 0) {
  const shown = result.misclassified.filter((m) => !filter || (m.true === filter[0] && m.predicted === filter[1]));
  $("wrong-filter").textContent = filter
    ? t("mistakes.filtered", {true: result.classes[filter[0]], predicted: result.classes[filter[1]],
                              shown: shown.length, all: result.misclassified.length})
    : t("mistakes.all", {count: result.misclassified.length});
  const first = page * MISTAKES_PER_PAGE, last = Math.min(shown.length, first + MISTAKES_PER_PAGE);
  $("misclassified").replaceChildren(...shown.slice(first, last).map((m) => mistake(asked, result.classes, m)));
  keyboardGroup([...$("misclassified").children]);
  const turn = (label, to) => {
    const button = element("button", "", label);
    button.type = "button";
    button.disabled = to < 0 || to * MISTAKES_PER_PAGE >= shown.length;
    button.addEventListener("click", () => showMistakes(asked, result, filter, to));
    return button;
  };
  const where = element("span", "note", shown.length
    ? t("mistakes.range", {first: first + 1, last, count: shown.length}) : t("mistakes.none"));
  $("mistake-pages").replaceChildren(turn(t("mistakes.previous"), page - 1), where, turn(t("mistakes.next"), page + 1));
}

function mistake(asked, classes, m) {
  const path = runPath(asked, `test-images/${m.index}`);
  const img = element("img");
  img.src = path; img.alt = t("mistakes.alt", {index: m.index});
  const figure = element("figure");
  figure.setAttribute("role", "button");
  figure.append(img, element("figcaption", "", `#${m.index} ${classes[m.true]} → ${classes[m.predicted]}`));
  figure.addEventListener("click", async () => {
    let blob;
    try { blob = await getBlob(path); } catch (error) { showError($("topk"), error); return; }
    await openImage(blob, t("mistakes.opened", {index: m.index, run: asked.name, true: classes[m.true],
                                                predicted: classes[m.predicted]}));
    $("try").scrollIntoView({behavior: "smooth"});
  });
  return figure;
}
