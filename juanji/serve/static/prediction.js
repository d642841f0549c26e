// What the network makes of the image: the image as it receives it (its size, the normalisation) and the
// most probable classes, each with a bar as long as its probability; and, beside another run's, side by side. The
// most probable class is also said to a screen reader (the polite live region #announce).
import {percent, t} from "./i18n.js";
import {$, element} from "./page.js";
import {minMax, paintImage} from "./paint.js";

const TOP = 5;             // classes listed: the five most probable, those top-5 accuracy counts
const BAR_WIDTH = 200;     // a bar's length at probability 1, in screen pixels
const MIN_BAR_WIDTH = 1;   // a bar's least length, so that a probability near 0 still shows one
const COMPARED = 3;        // classes side by side when two runs are compared: the top-3 of each

// An answer of /predict or /analyze: the classes, most probable first, the pixels and the network's input.
export function showPrediction(run, result) {
  paintImage($("received"), result.pixels);
  $("received-note").textContent = receivedNote(run, result);
  const list = $("topk");
  list.replaceChildren(...result.classes.slice(0, TOP).map((c) => {
    const bar = element("span", "bar");
    bar.style.width = `${Math.max(MIN_BAR_WIDTH, BAR_WIDTH * c.probability)}px`;
    const item = element("li");
    item.append(bar, `${c.name} ${percent(c.probability, 1)}`);
    item.dataset.index = c.index;
    return item;
  }));
  const top = result.classes[0];
  list.dataset.top = top.name;
  $("announce").textContent = t("announce.prediction", {name: top.name, probability: percent(top.probability, 0)});
}

// "28×28 pixels in [0, 1]; the network gets (x − mean) / std: values low … high", or "fed as they are".
function receivedNote(run, result) {
  const size = t("received.size", {height: result.pixels[0].length, width: result.pixels[0][0].length});
  const norm = run.normalization;
  if (!norm) return t("received.raw", {size});
  const [low, high] = minMax(result.input);
  const numbers = (values) => values.map((v) => v.toFixed(3)).join("/");
  return t("received.normalized", {size, mean: numbers(norm[0]), std: numbers(norm[1]), low: low.toFixed(2),
                                   high: high.toFixed(2)});
}

// The runs the image can be compared with: every run but the one shown (the choice kept while it is another).
export function showCompareChoices(runs, run) {
  const select = $("compare-run");
  const kept = select.value;
  select.replaceChildren(new Option(t("compare.none"), ""),
    ...runs.filter((r) => r !== run).map((r) => new Option(named(r), r.name)));
  select.value = runs.some((r) => r.name === kept && r !== run) ? kept : "";
  if (!select.value) showComparison(null);
}

// Two runs' answers for the same image side by side, [{run, result}, {run, result}], their top-3 classes each;
// null hides the table.
export function showComparison(pair) {
  const table = $("compare");
  table.hidden = !pair;
  $("compare-note").textContent = "";
  if (!pair) { table.replaceChildren(); return; }
  const head = element("tr");
  head.append(element("th", "", t("compare.rank")), ...pair.map(({run}) => element("th", "", named(run))));
  head.querySelectorAll("th").forEach((th) => { th.scope = "col"; });
  const rows = Array.from({length: COMPARED}, (_, n) => {
    const tr = element("tr");
    tr.append(element("td", "", String(n + 1)), ...pair.map(({result}) => {
      const c = result.classes[n];
      return element("td", "", c ? `${c.name} ${percent(c.probability, 1)}` : "");
    }));
    return tr;
  });
  table.replaceChildren(head, ...rows);
  const [a, b] = pair.map(({result}) => result.classes[0].name);
  $("compare-note").textContent = a === b ? t("compare.same", {name: a}) : t("compare.differ", {mine: a, other: b});
}

// A run's name, and its model where the name does not say it.
const named = (run) => (run.name === run.model ? run.name : t("run.named", {name: run.name, model: run.model}));
