// The page's words in English and 简体中文, in one table (WORDS) read through t(): every label, button, panel name
// and notice, and how percentages and counts are written. The Chinese words are the tutorials' (docs/glossary.zh.md);
// the names a run gives (its classes, layers, model) stay as they are. The language: ?lang=en or ?lang=zh, else the
// first of the browser's languages that is English or Chinese, else English; a switch in the header reloads the
// page in the other one.
import {$, element} from "./page.js";

export const WORDS = {
  en: {
    "page.title": "juanji serve",
    "page.subtitle": "inside a trained run",
    "languages": "Language",
    "run.label": "run",
    "run.info": "{model}, {parameters} parameters, input {shape}, model from {source}",
    "run.bestEpoch": "epoch {epoch}, best so far",
    "run.epochFile": "epoch {epoch} ({file})",
    "run.accuracy": "{source} (test accuracy {accuracy})",
    "run.none": "no run to show yet: a run is shown once its best.npz is written",
    "announce.prediction": "Prediction: {name}, {probability}",
    "percent": "{value} %",

    "try.title": "Try an image",
    "draw.label": "Drawing: draw with the mouse, or with the arrow keys (Shift and an arrow key move the pen, " +
                  "Enter ends the stroke)",
    "draw.clear": "Clear",
    "draw.upload": "Upload an image",
    "draw.hint": "Draw a garment in white on black, or upload a photo.",
    "source.drawing": "Your drawing.",
    "source.cleared": "Draw something.",
    "source.file": "{file}: shorter side scaled to the input size, the centre cut out.",
    "received.title": "As the network receives it",
    "received.size": "{height}×{width} pixels in [0, 1]",
    "received.raw": "{size}, fed as they are",
    "received.normalized": "{size}; the network gets (x − {mean}) / {std}: values {low} … {high}",
    "prediction.title": "Prediction",
    "compare.label": "compare with",
    "compare.none": "no other run",
    "compare.rank": "rank",
    "compare.same": "Both runs predict {name}.",
    "compare.differ": "The runs disagree: {mine} against {other}.",
    "run.named": "{name} ({model})",

    "inside.title": "Inside the network",
    "inside.note": "Every layer's feature maps for this image (each layer on one gray scale, its own min…max, its " +
                   "bar beside its name; a layer of 1×1 maps is one strip, a cell per map). Click a map to see it " +
                   "large beside what made it; move over it to see the arithmetic of one cell with the network's " +
                   "numbers.",
    "inside.notSequential": "This model is not a Sequential: no layer-by-layer view.",
    "map.label": "{layer}: map {map}, {range}",
    "strip.label": "{layer}: map {map} = {value}",
    "strip.keys": "{layer}: map {map} = {value}, of {count} maps of 1×1 (the arrow keys choose another, Enter " +
                  "shows it)",
    "detail.map": "the map",
    "detail.mapKeys": "the map, large: the arrow keys move the cell whose arithmetic is shown",
    "detail.input": "its input",
    "detail.kernel": "the kernel (blue −, red +)",
    "detail.deconv": "deconvnet",
    "detail.title": "layer {layer} ({type}), map {map} of {count}: {height}×{width}",
    "detail.scale": "layer {layer}'s scale",
    "detail.zero": "map {map}: all 0",
    "deconv.note": "deconvnet: its strongest cell ({position}) projected to the pixels (gray 0)",
    "input.note": "its input: {source}",
    "input.residual": "its input: {source}; {read}",
    "input.concat": "its input: {source}, copied as map {map}",
    "source.input": "the input, channel {channel}",
    "source.layer": "layer {layer}, map {map}",
    "math.computed": "(the network computed {value})",
    "math.none": "{cell} = {value}: a {type} computes it from {inputs} (no arithmetic is shown for it)",
    "math.allMaps": "all {count} maps of its input",
    "math.itsInput": "its input",
    "math.pad": "pad 0",
    "math.globalMax": "max of map {map}'s {height}×{width} cells",
    "math.globalMean": "mean of map {map}'s {height}×{width} cells",
    "math.region": "{cell} = {value}: a {type} of a region of map {map} of its input",
    "bn.running": "μ, σ²: map {map}'s running mean and variance from training; γ, β: its scale and shift",
    "bn.image": "μ, σ²: map {map}'s mean and variance over this image; γ, β: its scale and shift",
    "body.layers": "F = {layers}, of {inputs}",
    "shortcut.asIs": "the shortcut adds it as it is",
    "shortcut.adds": "the shortcut adds its cells ({stride}i, {stride}j)",
    "shortcut.identity": "{cell} = {read} = {value}: the identity",
    "shortcut.subsample": "{cell} = {read} = {value}: map {map} subsampled by {stride}",
    "shortcut.zero": "S(x)[{map}] = 0: the input has {channels} maps, and the shortcut appends zero maps after them",
    "shortcut.layers": "S = {layers}, of {inputs}",
    "concat.map": "map {map} = channel {channel} of input {input} (“{branch}”: {what}), so {cell} = {value}",
    "concat.itself": "the layer's input itself",
    "concat.layers": "{layers} of the layer's input",
    "pool.window": "window of {source}",
    "pool.max": "{cell} = max of the window = {ours}; the network: {network}",
    "pool.mean": "{cell} = mean of the window = {ours}; the network: {network}",
    "conv.window": "x: window of {source}",
    "conv.kernel": "w: kernel {kernel}, channel {channel}",
    "conv.channel": "channel {channel}: show its window and kernel",
    "units.title": "layer {layer} ({type}): {count} numbers",
    "units.map": "the layer's numbers, in a row",
    "units.label": "{layer}: y[{unit}] = {value}",
    "units.keys": "{layer}: y[{unit}] = {value}, of {count} numbers (the arrow keys choose another, Enter shows " +
                  "how it was computed)",
    "units.input": "its input x: the {count} numbers of layer {layer}, in a row",
    "units.weights": "w[{unit}, :]: the {count} weights of unit {unit} (blue −, red +)",
    "units.flatten": "flattening puts the cells in a row: map after map, each {height}×{width} map row after row",
    "linear.formula": "a fully connected layer: {cell} = b[{unit}] + Σ_i w[{unit}, i] · x[i], over all {count} " +
                      "inputs x[i]",
    "linear.largest": "the {count} largest terms |w · x|",
    "linear.others": "… and {count} more terms, together {sum}",
    "step.button": "Step through the cells",
    "softmax.title": "softmax: from the last layer's scores (logits) to probabilities",
    "softmax.class": "class",
    "softmax.predicted": "the prediction's p",
    "softmax.max": "max z = {max}, the score of {name}",
    "softmax.sum": "Σ e^(z − max z) = {sum}, over all {count} classes",
    "softmax.others": "… and {count} less probable classes (in Σ too)",
    "softmax.why": "Why subtract max z: e^z overflows once z passes about 88.7 in float32 (709.8 in float64), to " +
                   "Infinity, and Infinity / Infinity is NaN, the classic NaN of a softmax. Each e^(z − max z) lies " +
                   "in (0, 1], and the factor e^(−max z) that every e^z and Σ share cancels: the same p, never NaN.",
    "scale.allZero": "all 0",
    "scale.thisMap": "this map: {low} … {high}",

    "kernels.title": "Kernels",
    "kernels.layer": "layer",
    "kernels.note": "One row per kernel, one column per input channel (a first layer's kernels side by side); blue " +
                    "negative, white 0, red positive, one scale for the whole layer.",
    "kernels.none": "This model has no 2-D convolution.",
    "kernels.picture": "the {count} kernels of layer {layer}, {shape}: blue negative, white 0, red positive",

    "why.title": "Why this class",
    "why.class": "class",
    "why.layer": "Grad-CAM layer",
    "why.predicted": "the predicted class",
    "why.lastMaps": "the last with maps",
    "saliency.note": "saliency: max over channels of |∂S_c/∂x|, on its own scale 0 … its maximum",
    "saliency.unit": "|∂S_c/∂x|, x the network's input",
    "saliency.zero": "all 0: no pixel changes the score",
    "gradcam.title": "Grad-CAM",
    "gradcam.sequential": "Grad-CAM needs a Sequential model",
    "gradcam.zero": "all 0: nothing at layer {layer} speaks for “{name}”",
    "gradcam.note": "Grad-CAM of “{name}” at layer {layer}: {formula}, {height}×{width} cells {placed}",
    "gradcam.centred": "placed on their receptive fields' centres",
    "gradcam.stretched": "stretched over the image",
    "occlusion.title": "occlusion",
    "occlusion.unit": "p − p occluded: red a drop, blue a rise",
    "occlusion.zero": "all 0: no square changes p",
    "occlusion.note": "occlusion of “{name}”: p = {probability}; with a {size}×{size} square of the mean pixel " +
                      "over it (every {stride} pixels) p is {low} … {high}",

    "training.title": "Training",
    "chart.loss": "Loss",
    "chart.accuracy": "Accuracy",
    "chart.lr": "Learning rate",
    "chart.empty": "no {metric} in metrics.jsonl yet",
    "chart.epoch": "epoch",
    "legend.run": "■ {run} ({epochs} epochs)",
    "legend.accuracy": "■ {run} ({epochs} epochs, test accuracy {accuracy})",
    "legend.note": "solid: test, dashed: training; each chart on its own scale. Updates while juanji train " +
                   "writes metrics.jsonl.",
    "confusion.title": "Confusion matrix",
    "confusion.label": "confusion matrix: a row per true class, a column per predicted class",
    "confusion.evaluate": "Evaluate on the test set",
    "confusion.evaluating": "evaluating…",
    "confusion.progress": "evaluating… {percent}",
    "confusion.accuracy": "(accuracy {accuracy} on {count} test images)",
    "confusion.corner": "true ↓ predicted →",
    "confusion.cell": "{true} predicted as {predicted}: {count}",
    "mistakes.title": "Misclassified test images",
    "mistakes.all": "(all {count}; click one to look inside, a matrix cell to filter)",
    "mistakes.filtered": "({true} taken for {predicted}: {shown} of {all})",
    "mistakes.range": "{first}–{last} of {count}",
    "mistakes.none": "none",
    "mistakes.previous": "‹ previous",
    "mistakes.next": "next ›",
    "mistakes.alt": "test image {index}",
    "mistakes.opened": "Test image #{index} of {run}'s test set: a {true} ({run} predicted {predicted}).",
  },
  zh: {
    "page.title": "juanji：看网络内部",
    "page.subtitle": "看一次训练的网络内部",
    "languages": "语言",
    "run.label": "训练",
    "run.info": "{model}，{parameters} 个参数，输入 {shape}，模型来自{source}",
    "run.bestEpoch": "第 {epoch} 轮，目前最好的",
    "run.epochFile": "第 {epoch} 轮（{file}）",
    "run.accuracy": "{source}（测试准确率 {accuracy}）",
    "run.none": "还没有可以显示的训练：一次训练写出 best.npz 后才会显示",
    "announce.prediction": "预测：{name}，{probability}",
    "percent": "{value}%",

    "try.title": "试一张图像",
    "draw.label": "画板：用鼠标画，或者用方向键画（按住 Shift 再按方向键是移动画笔，按 Enter 结束这一笔）",
    "draw.clear": "清除",
    "draw.upload": "上传图像",
    "draw.hint": "在黑底上用白色画一件衣物，或者上传一张照片。",
    "source.drawing": "你画的图。",
    "source.cleared": "画点什么吧。",
    "source.file": "{file}：短边缩放到输入尺寸，裁出中间部分。",
    "received.title": "网络收到的图像",
    "received.size": "{height}×{width} 个像素，取值在 [0, 1]",
    "received.raw": "{size}，原样送入网络",
    "received.normalized": "{size}；网络收到的是 (x − {mean}) / {std}：取值 {low} … {high}",
    "prediction.title": "预测",
    "compare.label": "与另一次训练对比",
    "compare.none": "不对比",
    "compare.rank": "名次",
    "compare.same": "两次训练都预测为 {name}。",
    "compare.differ": "两次训练的预测不同：{mine} 对 {other}。",
    "run.named": "{name}（{model}）",

    "inside.title": "网络内部",
    "inside.note": "这张图像在每一层的特征图（每一层用同一个灰度范围，从这一层的最小值到最大值，层名旁边的色条写出这两个值；" +
                   "1×1 的特征图画成一条，每张特征图一格）。点一张特征图，它会放大显示在生成它的东西旁边；鼠标在上面移动，" +
                   "就能看到一个单元用网络的数字算出的算式。",
    "inside.notSequential": "这个模型不是 Sequential：没有逐层视图。",
    "map.label": "{layer}：特征图 {map}，{range}",
    "strip.label": "{layer}：特征图 {map} = {value}",
    "strip.keys": "{layer}：特征图 {map} = {value}，共 {count} 张 1×1 的特征图（用方向键选另一张，按 Enter 显示）",
    "detail.map": "这张特征图",
    "detail.mapKeys": "放大的特征图：用方向键移动单元，下面写出它的算式",
    "detail.input": "它的输入",
    "detail.kernel": "卷积核（蓝 −，红 +）",
    "detail.deconv": "反卷积网络",
    "detail.title": "层 {layer}（{type}），第 {map} 张特征图，共 {count} 张：{height}×{width}",
    "detail.scale": "层 {layer} 的刻度",
    "detail.zero": "特征图 {map}：全为 0",
    "deconv.note": "反卷积网络：它最强的单元 ({position}) 投影回像素（灰色为 0）",
    "input.note": "它的输入：{source}",
    "input.residual": "它的输入：{source}；{read}",
    "input.concat": "它的输入：{source}，复制为特征图 {map}",
    "source.input": "输入的通道 {channel}",
    "source.layer": "层 {layer} 的特征图 {map}",
    "math.computed": "（网络算出 {value}）",
    "math.none": "{cell} = {value}：{type} 由{inputs}算出（这里不写出它的算式）",
    "math.allMaps": "它输入的全部 {count} 张特征图",
    "math.itsInput": "它的输入",
    "math.pad": "填充 0",
    "math.globalMax": "特征图 {map} 的 {height}×{width} 个单元的最大值",
    "math.globalMean": "特征图 {map} 的 {height}×{width} 个单元的均值",
    "math.region": "{cell} = {value}：对它输入的特征图 {map} 的一个区域做 {type}",
    "bn.running": "μ、σ²：特征图 {map} 在训练中记下的滑动均值和方差；γ、β：它的缩放和平移",
    "bn.image": "μ、σ²：特征图 {map} 在这张图像上的均值和方差；γ、β：它的缩放和平移",
    "body.layers": "F = {layers}，作用于{inputs}",
    "shortcut.asIs": "捷径原样加上它",
    "shortcut.adds": "捷径加上它的单元 ({stride}i, {stride}j)",
    "shortcut.identity": "{cell} = {read} = {value}：恒等捷径",
    "shortcut.subsample": "{cell} = {read} = {value}：特征图 {map} 每隔 {stride} 个单元取一个",
    "shortcut.zero": "S(x)[{map}] = 0：输入只有 {channels} 张特征图，捷径在它们后面补上全为 0 的特征图",
    "shortcut.layers": "S = {layers}，作用于{inputs}",
    "concat.map": "特征图 {map} = 输入 {input}（“{branch}”：{what}）的通道 {channel}，所以 {cell} = {value}",
    "concat.itself": "这一层的输入本身",
    "concat.layers": "这一层的输入经过 {layers}",
    "pool.window": "{source} 上的窗口",
    "pool.max": "{cell} = 窗口内的最大值 = {ours}；网络算出：{network}",
    "pool.mean": "{cell} = 窗口内的均值 = {ours}；网络算出：{network}",
    "conv.window": "x：{source} 上的窗口",
    "conv.kernel": "w：卷积核 {kernel}，通道 {channel}",
    "conv.channel": "通道 {channel}：显示它的窗口和卷积核",
    "units.title": "层 {layer}（{type}）：{count} 个数",
    "units.map": "这一层的数，排成一行",
    "units.label": "{layer}：y[{unit}] = {value}",
    "units.keys": "{layer}：y[{unit}] = {value}，共 {count} 个数（用方向键选另一个，按 Enter 显示它是怎样算出的）",
    "units.input": "它的输入 x：层 {layer} 的 {count} 个数，排成一行",
    "units.weights": "w[{unit}, :]：单元 {unit} 的 {count} 个权重（蓝 −，红 +）",
    "units.flatten": "展平把单元排成一行：一张特征图接一张，每张 {height}×{width} 的特征图一行接一行",
    "linear.formula": "全连接层：{cell} = b[{unit}] + Σ_i w[{unit}, i] · x[i]，对全部 {count} 个输入 x[i] 求和",
    "linear.largest": "绝对值最大的 {count} 项 |w · x|",
    "linear.others": "…… 还有 {count} 项，合计 {sum}",
    "step.button": "逐个单元演示",
    "softmax.title": "softmax：把最后一层的分数（logits）变成概率",
    "softmax.class": "类别",
    "softmax.predicted": "预测给出的 p",
    "softmax.max": "max z = {max}，即“{name}”的分数",
    "softmax.sum": "Σ e^(z − max z) = {sum}，对全部 {count} 个类别求和",
    "softmax.others": "…… 还有 {count} 个概率更低的类别（也计入 Σ）",
    "softmax.why": "为什么要减去 max z：z 超过约 88.7 时，e^z 在 float32 中就会溢出（float64 中是超过 709.8），变成无穷大，" +
                   "而无穷大除以无穷大得到 NaN——softmax 里常见的 NaN 就是这样来的。减去之后每个 e^(z − max z) 都在 " +
                   "(0, 1] 之内，而每个 e^z 和 Σ 共有的因子 e^(−max z) 相互抵消：p 不变，也不会出现 NaN。",
    "scale.allZero": "全为 0",
    "scale.thisMap": "这张图：{low} … {high}",

    "kernels.title": "卷积核",
    "kernels.layer": "层",
    "kernels.note": "每个卷积核一行，每个输入通道一列（第一层的卷积核并排放在一行）；蓝色为负，白色为 0，红色为正，" +
                    "整层用同一个刻度。",
    "kernels.none": "这个模型没有二维卷积。",
    "kernels.picture": "层 {layer} 的 {count} 个卷积核，{shape}：蓝色为负，白色为 0，红色为正",

    "why.title": "为什么是这个类别",
    "why.class": "类别",
    "why.layer": "Grad-CAM 层",
    "why.predicted": "预测出的类别",
    "why.lastMaps": "最后一个有特征图的层",
    "saliency.note": "显著图：各通道上 |∂S_c/∂x| 的最大值，用它自己的刻度，从 0 到它的最大值",
    "saliency.unit": "|∂S_c/∂x|，x 为网络的输入",
    "saliency.zero": "处处为 0：没有哪个像素会改变得分",
    "gradcam.title": "Grad-CAM",
    "gradcam.sequential": "Grad-CAM 需要 Sequential 模型",
    "gradcam.zero": "处处为 0：层 {layer} 上没有任何证据支持“{name}”",
    "gradcam.note": "“{name}”在层 {layer} 的 Grad-CAM：{formula}，{height}×{width} 个单元，{placed}",
    "gradcam.centred": "放在各自感受野的中心",
    "gradcam.stretched": "拉伸到整张图像上",
    "occlusion.title": "遮挡图",
    "occlusion.unit": "p − p(遮挡后)：红色是下降，蓝色是上升",
    "occlusion.zero": "处处为 0：没有哪个方块会改变 p",
    "occlusion.note": "“{name}”的遮挡图：p = {probability}；用 {size}×{size} 的平均像素方块依次盖住各处（每隔 {stride} " +
                      "个像素）时，p 为 {low} … {high}",

    "training.title": "训练过程",
    "chart.loss": "损失",
    "chart.accuracy": "准确率",
    "chart.lr": "学习率",
    "chart.empty": "metrics.jsonl 里还没有 {metric}",
    "chart.epoch": "轮",
    "legend.run": "■ {run}（{epochs} 轮）",
    "legend.accuracy": "■ {run}（{epochs} 轮，测试准确率 {accuracy}）",
    "legend.note": "实线：测试集，虚线：训练集；每张图各用自己的刻度。juanji train 写 metrics.jsonl 时随之更新。",
    "confusion.title": "混淆矩阵",
    "confusion.label": "混淆矩阵：每个真实类别一行，每个预测类别一列",
    "confusion.evaluate": "在测试集上评估",
    "confusion.evaluating": "正在评估…",
    "confusion.progress": "正在评估… {percent}",
    "confusion.accuracy": "（在 {count} 张测试图像上的准确率为 {accuracy}）",
    "confusion.corner": "真实 ↓ 预测 →",
    "confusion.cell": "{true} 被预测为 {predicted}：{count}",
    "mistakes.title": "分错的测试图像",
    "mistakes.all": "（共 {count} 张；点一张就能看网络内部，点矩阵的一格可以筛选）",
    "mistakes.filtered": "（{true} 被当成 {predicted}：{all} 张中的 {shown} 张）",
    "mistakes.range": "{first}–{last}，共 {count} 张",
    "mistakes.none": "没有",
    "mistakes.previous": "‹ 上一页",
    "mistakes.next": "下一页 ›",
    "mistakes.alt": "测试图像 {index}",
    "mistakes.opened": "{run} 的测试集中的测试图像 #{index}：真实类别是 {true}（{run} 预测为 {predicted}）。",
  },
};

// Each language's name in itself, as the switch offers it.
const NAMES = {en: "English", zh: "中文"};

export const language = chosen();

function chosen() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (Object.hasOwn(WORDS, asked)) return asked;
  const base = (tag) => tag.toLowerCase().split("-")[0];
  return navigator.languages.map(base).find((l) => Object.hasOwn(WORDS, l)) ?? "en";
}

// The words of `key` in the page's language, each {name} in them replaced by values[name].
export function t(key, values = {}) {
  const words = WORDS[language][key];
  if (words === undefined) throw new Error(`i18n.js has no words for "${key}"`);
  return words.replace(/\{(\w+)\}/g, (_, name) => {
    if (!(name in values)) throw new Error(`"${key}" needs a value for {${name}}`);
    return values[name];
  });
}

// A probability p as a percentage with `decimals` decimals ("91.3 %", "91.3%").
export const percent = (p, decimals) => t("percent", {value: (100 * p).toFixed(decimals)});

// A count with its thousands grouped as the language groups them ("61,706").
export const integer = (n) => n.toLocaleString(language);

// The page in its language: the words of every element index.html marks (data-i18n: its text; data-i18n-label:
// its aria-label), the document's language and the switch to the other languages.
export function translatePage() {
  document.documentElement.lang = language;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-label]")) e.setAttribute("aria-label", t(e.dataset.i18nLabel));
  $("languages").replaceChildren(...Object.entries(NAMES).map(([code, name]) => {
    const link = element("a", "", name);
    const address = new URL(location.href);
    address.searchParams.set("lang", code);
    link.href = address.search;
    link.lang = link.hreflang = code;
    if (code === language) link.setAttribute("aria-current", "true");
    return link;
  }));
}
