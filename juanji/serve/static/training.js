// Training: the loss and accuracy curves of every run, re-read every few seconds so that they follow a
// `juanji train` still writing metrics.jsonl; the confusion matrix on the test set; and its mistakes, which
// open in the inside view.
import {getBlob, getJSON, runPath} from "./api.js";
import {$, element, showError} from "./page.js";

// metrics.jsonl is re-read every 3 s: an epoch takes far longer, and a new point appears soon enough.
const POLL_EVERY_MS = 3000;
// One colour per run (Material Design's 800 shades, distinct on white), again from the first past six runs.
const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];
// A chart's margins in screen pixels: room for the value labels on the left (10 px text like "0.123") and
// for the epochs below.
const MARGIN = {left: 34, right: 8, top: 10, bottom: 24};
const POINT_RADIUS = 2.5;  // one dot per epoch, in screen pixels
const MISTAKES_SHOWN = 60; // misclassified images drawn at once (the server sends the first 200)
// A cell's colour: the diagonal blue (COLOURS[0]) as deep as its share of the row; a mistake red (COLOURS[1]),
// full at a quarter of its row: mistakes are rare, and a few must still show.
const RIGHT_RGB = "21, 101, 192", WRONG_RGB = "198, 40, 40";
const MISTAKE_GAIN = 4;

let runs = [];             // every run served, one curve each
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
  $("confusion").replaceChildren(); $("misclassified").replaceChildren();
  $("accuracy").textContent = ""; $("wrong-filter").textContent = "";
  const button = $("load-confusion");
  button.hidden = false; button.disabled = false; button.textContent = "Evaluate on the test set";
}

// ---- curves ----------------------------------------------------------------------------------------------
async function pollMetrics() {
  let fetched;
  try {
    fetched = await Promise.all(runs.map((r) => getJSON(`/api/runs/${encodeURIComponent(r.name)}/metrics`)));
  } catch (error) { showError($("legend"), error); return; }
  const text = JSON.stringify(fetched);
  if (text === drawn) return;
  drawn = text;
  for (const [metric, svg] of [["loss", $("loss-chart")], ["accuracy", $("accuracy-chart")]]) {
    chart(svg, runs.flatMap((_, r) => ["train", "test"].map((split) => ({
      colour: COLOURS[r % COLOURS.length], dashed: split === "train",
      points: fetched[r].epochs.map((m) => [m.epoch, m[`${split}_${metric}`]]).filter((p) => p[1] !== undefined),
    }))));
  }
  showLegend(fetched);
}

function showLegend(fetched) {
  const legend = $("legend");
  legend.replaceChildren(...runs.map((r, n) => {
    const last = fetched[n].epochs.at(-1);
    const span = element("span", "", `■ ${r.name} (${fetched[n].epochs.length} epochs${
      last ? `, test accuracy ${(100 * last.test_accuracy).toFixed(2)} %` : ""})   `);
    span.style.color = COLOURS[n % COLOURS.length];
    return span;
  }));
  legend.append("solid: test, dashed: training. Updates while juanji train writes metrics.jsonl.");
}

// Lines of [epoch, value] points on an <svg>: series [{colour, dashed, points}], one scale for all of them.
function chart(svg, series) {
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height");
  const all = series.flatMap((s) => s.points);
  svg.replaceChildren();
  if (!all.length) return;
  const xmax = Math.max(...all.map((p) => p[0]), 1);
  let [ylow, yhigh] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (yhigh === ylow) { yhigh += 0.5; ylow -= 0.5; }
  const [left, right, top, bottom] = [MARGIN.left, W - MARGIN.right, MARGIN.top, H - MARGIN.bottom];
  const X = (x) => left + (right - left) * x / xmax, Y = (y) => bottom - (bottom - top) * (y - ylow) / (yhigh - ylow);
  const add = (tag, attributes, text) => {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [a, v] of Object.entries(attributes)) e.setAttribute(a, v);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
  };
  add("line", {x1: left, y1: bottom, x2: right, y2: bottom, stroke: "#999"});
  add("line", {x1: left, y1: top, x2: left, y2: bottom, stroke: "#999"});
  add("text", {x: 2, y: top + 4}, yhigh.toFixed(3));
  add("text", {x: 2, y: bottom}, ylow.toFixed(3));
  add("text", {x: W / 2, y: H - 4}, "epoch");
  add("text", {x: right - 12, y: bottom + 12}, String(xmax));
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
  button.disabled = true; button.textContent = "evaluating…";
  let result;
  try { result = await getJSON(runPath(asked, "confusion")); } catch (error) {
    if (asked === run) showError($("misclassified"), error);
    return;
  }
  if (asked !== run) return;                       // another run was chosen while this one was evaluated
  button.hidden = true;
  $("accuracy").textContent = `(accuracy ${(100 * result.accuracy).toFixed(2)} % on ${result.count} test images)`;
  const table = $("confusion");
  table.replaceChildren();
  const head = table.insertRow();
  head.appendChild(element("th", "", "true ↓ predicted →"));
  result.classes.forEach((_, j) => head.appendChild(element("th", "", String(j))));
  result.matrix.forEach((row, i) => {
    const tr = table.insertRow();
    tr.appendChild(element("th", "rowname", `${i} ${result.classes[i]}`));
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const td = tr.insertCell();
      const f = count / total;
      td.textContent = count;
      td.style.background = i === j ? `rgba(${RIGHT_RGB}, ${f})` : `rgba(${WRONG_RGB}, ${Math.min(1, MISTAKE_GAIN * f)})`;
      td.style.color = f > 0.5 ? "#fff" : "#222";
      td.title = `${result.classes[i]} predicted as ${result.classes[j]}: ${count}`;
      td.addEventListener("click", () => showMistakes(asked, result, i === j ? null : [i, j]));
    });
  });
  showMistakes(asked, result, null);
}

// The misclassified test images, all or (filter [true, predicted]) those of one cell of the matrix.
function showMistakes(asked, result, filter) {
  const shown = result.misclassified.filter((m) => !filter || (m.true === filter[0] && m.predicted === filter[1]));
  $("wrong-filter").textContent = filter
    ? `(${result.classes[filter[0]]} taken for ${result.classes[filter[1]]}: ${shown.length} of the first ${
        result.misclassified.length})`
    : `(the first ${result.misclassified.length}; click one to look inside, a matrix cell to filter)`;
  $("misclassified").replaceChildren(...shown.slice(0, MISTAKES_SHOWN).map((m) => mistake(asked, result.classes, m)));
}

function mistake(asked, classes, m) {
  const path = runPath(asked, `test-images/${m.index}`);
  const img = element("img");
  img.src = path; img.alt = `test image ${m.index}`;
  const figure = element("figure");
  figure.append(img, element("figcaption", "", `#${m.index} ${classes[m.true]} → ${classes[m.predicted]}`));
  figure.addEventListener("click", async () => {
    let blob;
    try { blob = await getBlob(path); } catch (error) { showError($("topk"), error); return; }
    await openImage(blob, `Test image #${m.index}: a ${classes[m.true]}, predicted ${classes[m.predicted]}.`);
    $("try").scrollIntoView({behavior: "smooth"});
  });
  return figure;
}
