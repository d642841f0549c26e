"""The pictures of ``juanji show`` that the pages show, in English and in Chinese: the arrays computed and drawn
by juanji.viz as ``juanji show`` does, with each language's words.

    python docs/figures/show_figures.py RUN RUN_20K [OUT_DIR]      # default: docs/images

RUN is the LeNet-5 of the walkthrough's, the visualizing page's and the command-line reference's pictures;
RUN_20K the one of the serve page's Grad-CAM, occlusion and deconvnet, whose numbers that page quotes:

    juanji train --epochs 3 --out runs/lenet5-3
    juanji train --limit 20000 --epochs 2 --warmup-epochs 0 --out runs/lenet5-20k

(without ``--warmup-epochs 0`` the second trains another network, whose numbers are not the page's).

Every picture is drawn once per language, ``NAME.en.png`` and ``NAME.zh.png``, from the same arrays.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from juanji.functional.activation import softmax
from juanji.metrics import confusion_matrix
from juanji.nn import no_grad
from juanji.trained import TrainedModel
from juanji.viz import pictures
from juanji.viz.chain import layer_chain, run_chain
from juanji.viz.class_model import class_model
from juanji.viz.deconvnet import deconvnet
from juanji.viz.features import feature_maps, map_grid
from juanji.viz.grid import picture, to_unit
from juanji.viz.kernels import conv_layers, kernel_grid
from juanji.viz.plots import plot_confusion, plot_grid, plot_panels, plot_saliency, rgb

DOCS = Path(__file__).resolve().parents[1]
OUT = DOCS / "images"
BOOT = DOCS / "images" / "ankle-boot.png"
LANGUAGES = ("en", "zh")

TEXT = {
    "en": {
        "classes": {},
        "kernels": "layer {layer}: {count} kernels × {channels} channel(s), {size}",
        "shared": "shared scale: black −{m:.3g}, gray 0, white +{m:.3g}",
        "kernel": "per-kernel scale: each kernel's own −max|w| black, 0 gray, +max|w| white",
        "rows": "one row per kernel, one column per input channel",
        "input": "input", "image": "image", "overlay": "overlay",
        "features": "feature maps of {image} (each layer scaled to its own min…max)",
        "saliency": "saliency of class '{c}' (score S_c = {score:.2f}, p = {p:.3f}; predicted '{top}') for {image}",
        "saliency label": "saliency max |∂S_c/∂I|",
        "gradcam": "Grad-CAM of class '{c}' at layer {layer} ({count} maps of {size}, {placed}); predicted '{top}'",
        "centred": "each cell on its receptive field's centre", "stretched": "stretched over the image",
        "gradcam label": "ReLU(Σ_k α_k A_k)",
        "occlusion": "occlusion of class '{c}' (p = {p:.3f}, lowest {low:.3f} occluded): {size}×{size} squares of "
                     "the mean pixel every {stride} pixels",
        "occlusion label": "drop of p when occluded",
        "deconv": "deconvnet (Zeiler & Fergus 2014): the strongest activation of each map of layer {layer} "
                  "projected to the pixels of {image}\n(gray 0, each panel on its own scale)",
        "map": "map {k} at ({i}, {j})",
        "class models": "class models: argmax_I S_c(I) − λ‖I‖², λ = {l2}, {steps} steps of {lr} from the mean "
                        "image + noise (each stretched to its own min…max)",
        "confusion": "confusion matrix on {count:,} test images, accuracy {accuracy:.4f}",
        "confusion labels": ("predicted class", "true class", "fraction of the true class"),
        "misclassified": "{wrong:,} of {count:,} test images misclassified (accuracy {accuracy:.4f}); the first {shown}",
        "mistake": "#{i} true {true}\npredicted {predicted}",
    },
    "zh": {
        "classes": {"T-shirt/top": "T 恤/上衣", "Trouser": "裤子", "Pullover": "套头衫", "Dress": "连衣裙",
                    "Coat": "外套", "Sandal": "凉鞋", "Shirt": "衬衫", "Sneaker": "运动鞋", "Bag": "包",
                    "Ankle boot": "短靴"},
        "kernels": "第 {layer} 层：{count} 个卷积核 × {channels} 个通道，{size}",
        "shared": "整层共用一个色标：黑 −{m:.3g}，灰 0，白 +{m:.3g}",
        "kernel": "每个卷积核各自的色标：黑为它的 −max|w|，灰 0，白为 +max|w|",
        "rows": "每个卷积核一行，每个输入通道一列",
        "input": "输入", "image": "图像", "overlay": "叠加",
        "features": "{image} 的特征图（每层按自己的最小值…最大值缩放）",
        "saliency": "“{c}”类的显著图（得分 S_c = {score:.2f}，p = {p:.3f}；预测为“{top}”），图像 {image}",
        "saliency label": "显著度 max |∂S_c/∂I|",
        "gradcam": "“{c}”类在第 {layer} 层的 Grad-CAM（{count} 张 {size} 的特征图，{placed}）；预测为“{top}”",
        "centred": "每格放在其感受野的中心", "stretched": "拉伸铺满图像",
        "gradcam label": "ReLU(Σ_k α_k A_k)",
        "occlusion": "“{c}”类的遮挡图（p = {p:.3f}，遮挡后最低 {low:.3f}）：每隔 {stride} 个像素放一块 {size}×{size} "
                     "的平均像素方块",
        "occlusion label": "遮挡后 p 的降幅",
        "deconv": "反卷积网络（Zeiler & Fergus 2014）：第 {layer} 层每张特征图最强的激活投影回 {image} 的像素\n"
                  "（灰为 0，每个面板各自缩放）",
        "map": "特征图 {k}，位于 ({i}, {j})",
        "class models": "类别模型：argmax_I S_c(I) − λ‖I‖²，λ = {l2}，从平均图像加噪声出发，{steps} 步、步长 {lr}"
                        "（每张按自己的最小值…最大值拉伸）",
        "confusion": "{count:,} 张测试图像上的混淆矩阵，准确率 {accuracy:.4f}",
        "confusion labels": ("预测类别", "真实类别", "占真实类别的比例"),
        "misclassified": "{count:,} 张测试图像中判断错了 {wrong:,} 张（准确率 {accuracy:.4f}）；这里是前 {shown} 张",
        "mistake": "#{i} 真实：{true}\n预测：{predicted}",
    },
}


def class_name(text: dict, name: str) -> str:
    return text["classes"].get(name, name)


# -- the arrays, computed as `juanji show` computes them --------------------------------------------------
def data_kernels(trained, layer: str = "0", scale: str = "shared"):
    layers = dict(conv_layers(trained.model))
    weight = layers[layer].params["weight"]
    rgb_image = weight.shape[1] == 3 and layer == next(iter(layers))
    return {"layer": layer, "shape": weight.shape, "m": float(np.abs(weight).max()), "scale": scale,
            "grid": kernel_grid(weight, scale, rgb_image)}


def data_features(trained):
    pixels, x = trained.prepare(str(BOOT))
    kinds = dict(layer_chain(trained.model))
    return {"pixels": pixels, "maps": [(name, type(kinds[name]).__name__, m)
                                       for name, m in feature_maps(trained.model, x).items()]}


def explained(trained):
    """The boot's pixels, model input, class scores and predicted class."""
    pixels, x = trained.prepare(str(BOOT))
    scores = pictures.scores_of(trained.model, x)
    return pixels, x, scores, int(np.argmax(scores))


def data_saliency(trained):
    pixels, x, scores, c = explained(trained)
    return {"pixels": pixels, "scores": scores, "c": c, "classes": trained.classes,
            "p": float(softmax(scores[None].astype(np.float64), axis=1)[0, c]),
            "map": pictures.saliency(trained.model, x, c)}


def data_gradcam(trained, layer: str = "4"):
    pixels, x, scores, c = explained(trained)
    return {"pixels": pixels, "c": c, "classes": trained.classes, "found": pictures.gradcam(trained.model, x, c, layer)}


def data_occlusion(trained, size: int = 6, stride: int = 2):
    pixels, x, scores, c = explained(trained)
    return {"pixels": pixels, "c": c, "classes": trained.classes,
            "found": pictures.occlusion(trained.model, x, c, size, stride)}


def data_deconv(trained, layer: str = "3"):
    model = trained.model
    pixels, x = trained.prepare(str(BOOT))
    chain = layer_chain(model)
    with no_grad():
        y = run_chain(chain, x[None])[[name for name, _ in chain].index(layer)]
    projections = []
    for k in range(y.shape[1]):
        projection, at = deconvnet(model, x, layer, k)
        projections.append((at, picture(np.clip(0.5 + projection / (2 * (np.abs(projection).max() or 1)), 0, 1))))
    return {"pixels": pixels, "layer": layer, "projections": projections}


def data_class_model(trained, steps: int = 200, lr: float = 0.1, l2: float = 0.05):
    chosen = list(range(len(trained.classes)))
    images, scores = class_model(trained.model, chosen, steps=steps, lr=lr, l2=l2, input_shape=trained.input_shape)
    if trained.normalization:                           # back to pixel space: I · std + mean
        mean, std = (np.array(v, dtype=np.float32)[:, None, None] for v in trained.normalization)
        images = images * std + mean
    return {"classes": trained.classes, "images": [picture(to_unit(image)) for image in images],
            "scores": scores, "steps": steps, "lr": lr, "l2": l2}


def data_test_set(trained):
    """The confusion matrix and the mistakes on the test set the run was trained with."""
    test_set = trained.test_set()
    result = trained.evaluate(test_set)
    predictions = result["predictions"]
    return {"classes": trained.classes, "count": len(test_set), "accuracy": result["accuracy"],
            "matrix": confusion_matrix(test_set.labels, predictions, len(trained.classes)),
            "wrong": [(int(i), int(test_set.labels[i]), int(predictions[i]), picture(test_set.images[i]))
                      for i in np.flatnonzero(predictions != test_set.labels)]}


# -- the pictures, in one language ---------------------------------------------------------------------
def draw_kernels(data, text, path):
    count, channels, kh, kw = data["shape"]
    lines = [text["kernels"].format(layer=data["layer"], count=count, channels=channels, size=f"{kh}×{kw}"),
             text["shared"].format(m=data["m"]) if data["scale"] == "shared" else text["kernel"]]
    if channels > 1:
        lines.append(text["rows"])
    plot_grid(data["grid"], path, "\n".join(lines))


def draw_features(data, text, path):
    panels = [(text["input"], rgb(data["pixels"]))] + [
        (f"{name} {kind} {'×'.join(map(str, m.shape))}", map_grid(m)) for name, kind, m in data["maps"]]
    plot_panels(panels, path, text["features"].format(image=BOOT.name), columns=4, cmap="viridis", border="white")


def draw_saliency(data, text, path):
    names = [class_name(text, name) for name in data["classes"]]
    title = text["saliency"].format(c=names[data["c"]], score=data["scores"][data["c"]], p=data["p"],
                                    top=names[int(np.argmax(data["scores"]))], image=BOOT.name)
    plot_saliency(data["pixels"], data["map"], path, title, text["saliency label"], (text["image"], text["overlay"]))


def draw_gradcam(data, text, path):
    found, names = data["found"], [class_name(text, name) for name in data["classes"]]
    count, height, width = found.maps_shape
    title = text["gradcam"].format(c=names[data["c"]], layer=found.layer, count=count, size=f"{height}×{width}",
                                   placed=text["centred" if found.centred else "stretched"], top=names[data["c"]])
    plot_saliency(data["pixels"], found.pixels, path, title, text["gradcam label"], (text["image"], text["overlay"]))


def draw_occlusion(data, text, path):
    found = data["found"]
    title = text["occlusion"].format(c=class_name(text, data["classes"][data["c"]]), p=found.probability,
                                     low=found.map.min(), size=found.size, stride=found.stride)
    plot_saliency(data["pixels"], found.drop, path, title, text["occlusion label"], (text["image"], text["overlay"]))


def draw_deconv(data, text, path):
    panels = [(text["input"], rgb(data["pixels"]))] + [
        (text["map"].format(k=k, i=i, j=j), projection) for k, ((i, j), projection) in enumerate(data["projections"])]
    plot_panels(panels, path, text["deconv"].format(layer=data["layer"], image=BOOT.name), panel_size=(1.8, 2.0))


def draw_class_model(data, text, path):
    scores = data["scores"]
    panels = [(f"{class_name(text, name)}\nS_c {scores[0, c]:.1f} → {scores[-1, c]:.1f}", image)
              for c, (name, image) in enumerate(zip(data["classes"], data["images"]))]
    title = text["class models"].format(l2=data["l2"], steps=data["steps"], lr=data["lr"])
    plot_panels(panels, path, title, columns=min(len(panels), 5), panel_size=(2.4, 2.8))


def draw_confusion(data, text, path):
    plot_confusion(data["matrix"], [class_name(text, name) for name in data["classes"]], path,
                   text["confusion"].format(count=data["count"], accuracy=data["accuracy"]), text["confusion labels"])


def draw_misclassified(data, text, path, count: int = 30):
    names = [class_name(text, name) for name in data["classes"]]
    panels = [(text["mistake"].format(i=i, true=names[true], predicted=names[predicted]), image)
              for i, true, predicted, image in data["wrong"][:count]]
    title = text["misclassified"].format(wrong=len(data["wrong"]), count=data["count"], accuracy=data["accuracy"],
                                         shown=len(panels))
    plot_panels(panels, path, title, panel_size=(1.8, 2.0))


# -- which picture, from which run ---------------------------------------------------------------------
# file name → (run: 0 for RUN, 1 for RUN_20K; the arrays; the drawing)
FIGURES = {
    "kernels": (0, data_kernels, draw_kernels),
    "kernels-3": (0, lambda trained: data_kernels(trained, "3", "kernel"), draw_kernels),
    "features": (0, data_features, draw_features),
    "saliency": (0, data_saliency, draw_saliency),
    "class-model": (0, data_class_model, draw_class_model),
    "confusion": (0, data_test_set, draw_confusion),
    "misclassified": (0, data_test_set, draw_misclassified),
    "gradcam": (1, data_gradcam, draw_gradcam),
    "occlusion": (1, data_occlusion, draw_occlusion),
    "deconv": (1, data_deconv, draw_deconv),
}


def file_name(name: str, language: str) -> str:
    return f"{name}.{language}.png"


def make(runs, out=OUT, names=tuple(FIGURES), languages=LANGUAGES) -> list[Path]:
    """Draw each picture of ``names`` in every language from ``runs`` (RUN, RUN_20K: run directories or
    checkpoints); returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trained = [TrainedModel.load(str(run)) for run in runs]
    computed, written = {}, []
    for name in names:
        run, data_of, draw = FIGURES[name]
        key = (run, data_of)
        if key not in computed:                 # the confusion matrix and the mistakes: one pass over the test set
            computed[key] = data_of(trained[run])
        for language in languages:
            path = out / file_name(name, language)
            draw(computed[key], TEXT[language], path)
            written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    for written_path in make(sys.argv[1:3], *sys.argv[3:]):
        print(written_path)
