"""``juanji show ...``: pictures of a trained network — kernels, feature maps, saliency, Grad-CAM, occlusion,
deconvnet, class models, training curves, confusion matrix, misclassified test images, predicted masks.  Each writes one PNG and
prints its path."""
from __future__ import annotations

import os
import re

import numpy as np

from ..nn import no_grad
from ..viz.kernels import SCALES
from ..io import write_atomically
from ..runs import Run
from ..trained import TrainedModel
from . import add_photo_options, number


def register(sub):
    """Add ``show`` and its sub-commands to the ``juanji`` argument parser."""
    show = sub.add_parser("show", help="pictures: kernels, features, saliency, gradcam, occlusion, deconv, "
                                       "class-model, curves, confusion, misclassified, masks",
                          description="Draw what a trained network does as a PNG.")
    kinds = show.add_subparsers(dest="picture", required=True, metavar="PICTURE")

    def add(name, handler, summary, checkpoint=True, image=False):
        p = kinds.add_parser(name, help=summary, description=summary)
        if checkpoint:
            p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
        if image:
            p.add_argument("image", metavar="IMAGE")
            add_photo_options(p)
        p.add_argument("--out", help="PNG file to write (default: in the run directory if given one, else here)")
        p.set_defaults(run=handler)
        return p

    p = add("kernels", cmd_kernels, "the kernels (weights) of a convolution layer as a grid")
    p.add_argument("--layer", help="dotted layer name (default: the first convolution)")
    p.add_argument("--scale", choices=SCALES, default="shared",
                   help="one colour scale for the whole layer (default), or one per kernel")
    p = add("features", cmd_features, "the feature maps of an image after each layer", image=True)
    p.add_argument("--layers", help="comma-separated layer names, nested Sequentials opened: features.3 (default: every layer that outputs maps)")
    p = add("saliency", cmd_saliency, "which pixels of an image the class score is most sensitive to", image=True)
    p.add_argument("--class", dest="class_name", help="class name or index (default: the predicted class)")
    p = add("gradcam", cmd_gradcam, "Grad-CAM: where in a layer's maps the evidence for a class lies", image=True)
    p.add_argument("--class", dest="class_name", help="class name or index (default: the predicted class)")
    p.add_argument("--layer", help="layer name, nested Sequentials opened: features.3 (default: the last one with "
                                   "maps, poolings left out)")
    p = add("occlusion", cmd_occlusion, "how much the class probability drops with a gray square over each place",
            image=True)
    p.add_argument("--class", dest="class_name", help="class name or index (default: the predicted class)")
    p.add_argument("--size", type=number(int, 1), default=6, help="side of the gray square in pixels (default 6)")
    p.add_argument("--stride", type=number(int, 1), default=2, help="step between squares in pixels (default 2)")
    p = add("deconv", cmd_deconv, "deconvnet: each map's strongest activation projected back to the pixels",
            image=True)
    p.add_argument("--layer", help="layer name, nested Sequentials opened: features.3 (default: the last one with "
                                   "maps, poolings left out)")
    p = add("class-model", cmd_class_model, "the image the network scores highest for a class (gradient ascent)")
    p.add_argument("--class", dest="class_name", help="class name or index (default: every class)")
    p.add_argument("--steps", type=number(int, 1), default=200, help="gradient ascent steps (default 200)")
    p.add_argument("--lr", type=number(float, 0), default=0.1, help="step size (default 0.1)")
    p.add_argument("--l2", type=number(float, 0), default=0.05, help="λ of the penalty λ‖I‖² (default 0.05)")
    p = add("curves", cmd_curves, "loss and accuracy per epoch of one or several runs", checkpoint=False)
    p.add_argument("runs", nargs="+", metavar="RUN")
    add("confusion", cmd_confusion, "confusion matrix on the test set as a heat map")
    p = add("misclassified", cmd_misclassified, "test images the model gets wrong, with true and predicted class")
    p.add_argument("--count", type=number(int, 1), default=30, help="how many images (default 30)")
    p = add("masks", cmd_masks, "a segmentation run's test images with their true and predicted masks")
    p.add_argument("--count", type=number(int, 1), default=8, help="how many images (default 8)")


def _out_path(args, name: str) -> str:
    """``--out``, else ``name`` (made safe as a file name) in the run directory given (the one run of ``show
    curves``), else in the current one."""
    if args.out:
        return args.out
    name = re.sub(r"[^\w.-]+", "_", name)
    runs = getattr(args, "runs", [])            # show curves: one run's picture goes into that run
    run = getattr(args, "checkpoint", None) or (runs[0] if len(runs) == 1 else None)
    return os.path.join(run, name) if run and os.path.isdir(run) else name


def _done(path: str) -> int:
    print(path)
    return 0


def cmd_kernels(args):
    from ..viz.kernels import conv_layers, kernel_grid
    from ..viz.plots import plot_grid
    model = TrainedModel.load(args.checkpoint).model
    layers = conv_layers(model)
    if not layers:
        raise ValueError(f"{args.checkpoint}: the model has no convolution layer")
    names = [name for name, _ in layers]
    name = args.layer if args.layer is not None else names[0]
    if name not in names:
        raise ValueError(f"no convolution layer named '{name}'; the convolution layers are {', '.join(names)}")
    weight = dict(layers)[name].params["weight"]
    kernels, channels, kh, kw = weight.shape
    rgb = channels == 3 and name == names[0]
    m = np.abs(weight).max()
    scale = (f"shared scale: black −{m:.3g}, gray 0, white +{m:.3g}" if args.scale == "shared" else
             "per-kernel scale: each kernel's own −max|w| black, 0 gray, +max|w| white")
    layout = ("RGB composite of the 3 input channels" if rgb else
              "one row per kernel, one column per input channel" if channels > 1 else "")
    title = f"layer {name}: {kernels} kernels × {channels} channel(s), {kh}×{kw}\n{scale}\n{layout}".rstrip()
    path = _out_path(args, f"kernels-{name}.png")
    plot_grid(kernel_grid(weight, args.scale, rgb), path, title)
    return _done(path)


def cmd_features(args):
    from ..viz.chain import layer_chain
    from ..viz.features import feature_maps, map_grid
    from ..viz.plots import plot_panels, rgb
    trained = TrainedModel.load(args.checkpoint)
    model = trained.model
    pixels, x = trained.prepare(args.image, args.invert, args.center)
    layers = [name for name in args.layers.split(",") if name] if args.layers else None
    maps = feature_maps(model, x, layers)
    kinds = dict(layer_chain(model))
    panels = [("input", rgb(pixels))] + [
        (f"{name} {type(kinds[name]).__name__} {'×'.join(map(str, m.shape))}", map_grid(m))
        for name, m in maps.items()]
    path = _out_path(args, f"features-{os.path.splitext(os.path.basename(args.image))[0]}.png")
    plot_panels(panels, path, f"feature maps of {os.path.basename(args.image)} (each layer scaled to its own "
                              f"min…max)", columns=4, cmap="viridis", border="white")
    return _done(path)


def cmd_saliency(args):
    from ..functional.activation import softmax
    from ..viz import pictures
    from ..viz.plots import plot_saliency
    model, classes, pixels, x, scores, c = _explained(args)
    probability = softmax(scores[None], axis=1)[0, c]
    title = (f"saliency of class '{classes[c]}' (score S_c = {scores[c]:.2f}, p = {probability:.3f}; "
             f"predicted '{classes[int(scores.argmax())]}') for {os.path.basename(args.image)}")
    path = _out_path(args, f"saliency-{os.path.splitext(os.path.basename(args.image))[0]}.png")
    plot_saliency(pixels, pictures.saliency(model, x, c), path, title)
    return _done(path)


def _explained(args):
    """(model, classes, pixels, model input, scores, chosen class) for the heat-map pictures of one image."""
    from ..viz import pictures
    trained = TrainedModel.load(args.checkpoint)
    pixels, x = trained.prepare(args.image, args.invert, args.center)
    scores = pictures.scores_of(trained.model, x)
    return trained.model, trained.classes, pixels, x, scores, pictures.choose_class(trained, scores, args.class_name)


def cmd_gradcam(args):
    from ..viz import pictures
    from ..viz.plots import plot_saliency
    model, classes, pixels, x, scores, c = _explained(args)
    found = pictures.gradcam(model, x, c, args.layer)
    placed = "each cell on its receptive field's centre" if found.centred else "stretched over the image"
    maps = found.maps_shape
    title = (f"Grad-CAM of class '{classes[c]}' at layer {found.layer} ({maps[0]} maps of "
             f"{maps[1]}×{maps[2]}, {placed}); predicted '{classes[int(scores.argmax())]}'")
    path = _out_path(args, f"gradcam-{os.path.splitext(os.path.basename(args.image))[0]}.png")
    plot_saliency(pixels, found.pixels, path, title, "ReLU(Σ_k α_k A_k)")
    return _done(path)


def cmd_occlusion(args):
    from ..viz import pictures
    from ..viz.plots import plot_saliency
    model, classes, pixels, x, scores, c = _explained(args)
    found = pictures.occlusion(model, x, c, args.size, args.stride)
    title = (f"occlusion of class '{classes[c]}' (p = {found.probability:.3f}, lowest {found.map.min():.3f} "
             f"occluded): {args.size}×{args.size} squares of the mean pixel every {args.stride} pixels")
    path = _out_path(args, f"occlusion-{os.path.splitext(os.path.basename(args.image))[0]}.png")
    plot_saliency(pixels, found.drop, path, title, "drop of p when occluded")
    return _done(path)


def cmd_deconv(args):
    from ..viz.chain import layer_chain, run_chain
    from ..viz.deconvnet import deconvnet
    from ..viz.gradcam import last_map_layer
    from ..viz.grid import picture
    from ..viz.plots import plot_panels, rgb
    trained = TrainedModel.load(args.checkpoint)
    model = trained.model
    pixels, x = trained.prepare(args.image, args.invert, args.center)
    chain = layer_chain(model)
    with no_grad():
        outputs = run_chain(chain, x[None])
    layer = args.layer or last_map_layer(chain, outputs)
    names = [name for name, _ in chain]
    if layer not in names:
        raise ValueError(f"no layer named '{layer}'; the layers are {', '.join(names)}")
    y = outputs[names.index(layer)]
    panels = [("input", rgb(pixels))]
    for k in range(y.shape[1] if y.ndim == 4 else 0):
        projection, (i, j) = deconvnet(model, x, layer, k)
        m = np.abs(projection).max() or 1
        panels.append((f"map {k} at ({i}, {j})", picture(np.clip(0.5 + projection / (2 * m), 0, 1))))
    if len(panels) == 1:
        raise ValueError(f"layer {layer} outputs shape {y.shape[1:]}, not feature maps (C, H, W)")
    title = (f"deconvnet (Zeiler & Fergus 2014): the strongest activation of each map of layer {layer} projected "
             f"to the pixels of {os.path.basename(args.image)}\n(gray 0, each panel on its own scale)")
    path = _out_path(args, f"deconv-{layer}-{os.path.splitext(os.path.basename(args.image))[0]}.png")
    plot_panels(panels, path, title, panel_size=(1.8, 2.0))
    return _done(path)


def cmd_class_model(args):
    from ..viz.class_model import class_model
    from ..viz.grid import picture, to_unit
    from ..viz.plots import plot_panels
    trained = TrainedModel.load(args.checkpoint)
    classes, normalization = trained.classes, trained.normalization
    chosen = [trained.class_index(args.class_name)] if args.class_name else list(range(len(classes)))
    images, scores = class_model(trained.model, chosen, steps=args.steps, lr=args.lr, l2=args.l2,
                                 input_shape=trained.input_shape)
    if normalization:                                   # back to pixel space: I · std + mean
        mean, std = (np.array(v, dtype=np.float32)[:, None, None] for v in normalization)
        images = images * std + mean
    panels = [(f"{classes[c]}\nS_c {scores[0, i]:.1f} → {scores[-1, i]:.1f}", picture(to_unit(image)))
              for i, (c, image) in enumerate(zip(chosen, images))]
    title = (f"class models: argmax_I S_c(I) − λ‖I‖², λ = {args.l2}, {args.steps} steps of {args.lr} "
             f"from the mean image + noise (each stretched to its own min…max)")
    name = f"class-model-{classes[chosen[0]]}.png" if args.class_name else "class-model.png"
    path = _out_path(args, name)
    plot_panels(panels, path, title, columns=min(len(panels), 5), panel_size=(2.4, 2.8))
    return _done(path)


def cmd_curves(args):
    from ..viz.curves import plot_curves
    runs = {}
    for run in args.runs:
        history = Run(run).metrics()
        if not history:
            raise ValueError(f"{run}: no metrics.jsonl with any epoch, not a juanji run directory")
        runs[os.path.normpath(run)] = history
    path = _out_path(args, "curves.png")
    write_atomically(path, lambda f: plot_curves(runs, f))
    return _done(path)


def _test_predictions(args):
    """(classes, test set, predictions (N,), accuracy) of ``args.checkpoint`` on the test set it was trained with."""
    trained = TrainedModel.load(args.checkpoint)
    if trained.is_text and args.picture == "misclassified":
        raise ValueError(f"{args.checkpoint}: a text run; 'show misclassified' draws images (see 'juanji eval')")
    if trained.is_segmentation and args.picture == "misclassified":
        raise ValueError(f"{args.checkpoint}: a segmentation run, whose mistakes are pixels: see 'juanji show masks'")
    test_set = trained.test_set()
    result = trained.evaluate(test_set)
    return trained.classes, test_set, result["predictions"], result["accuracy"]


def cmd_confusion(args):
    from ..metrics import confusion_matrix
    from ..viz.plots import plot_confusion
    classes, test_set, predictions, accuracy = _test_predictions(args)
    matrix = confusion_matrix(test_set.labels, predictions, len(classes))
    path = _out_path(args, "confusion.png")
    plot_confusion(matrix, classes, path, f"confusion matrix on {len(test_set):,} test images, "
                                          f"accuracy {accuracy:.4f}")
    return _done(path)


def cmd_misclassified(args):
    from ..viz.grid import picture
    from ..viz.plots import plot_panels
    if args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    classes, test_set, predictions, accuracy = _test_predictions(args)
    wrong = np.flatnonzero(predictions != test_set.labels)
    if not len(wrong):
        raise ValueError(f"{args.checkpoint}: every one of the {len(test_set)} test images is classified correctly")
    panels = [(f"#{i} true {classes[test_set.labels[i]]}\npredicted {classes[predictions[i]]}",
               picture(test_set.images[i])) for i in wrong[:args.count]]
    path = _out_path(args, "misclassified.png")
    plot_panels(panels, path, f"{len(wrong):,} of {len(test_set):,} test images misclassified "
                              f"(accuracy {accuracy:.4f}); the first {len(panels)}", panel_size=(1.8, 2.0))
    return _done(path)


def cmd_masks(args):
    from ..metrics import confusion_matrix, mean_iou
    from ..viz.plots import plot_masks
    if args.count < 1:
        raise ValueError(f"--count must be at least 1, got {args.count}")
    trained = TrainedModel.load(args.checkpoint)
    if not trained.is_segmentation:
        raise ValueError(f"{args.checkpoint}: not a segmentation run; 'show masks' draws the masks a model such as "
                         f"unet predicts (juanji train --model unet --data fashion-masks)")
    test_set = trained.test_set()
    images, masks = test_set.images[:args.count], test_set.labels[:args.count]
    with no_grad():
        predicted = trained.model(trained.normalize(images)).argmax(axis=1)
    classes = trained.classes
    k = len(classes)

    def caption(mask, guess) -> str:
        """The garment of a true mask (its commonest class but background), and the image's mean IoU."""
        counts = np.bincount(mask.ravel(), minlength=k)
        garment = classes[int(counts[1:].argmax()) + 1] if counts[1:].any() else classes[0]
        return f"{garment}\nIoU {mean_iou(confusion_matrix(mask, guess, k)):.2f}"

    captions = [caption(mask, guess) for mask, guess in zip(masks, predicted)]
    overall = mean_iou(confusion_matrix(masks, predicted, k))
    path = _out_path(args, "masks.png")
    plot_masks(images, masks, predicted, classes, path,
               f"the first {len(images)} test images, their true masks and the predicted ones: mean IoU {overall:.4f} "
               f"over these (per image: over the classes in its true or predicted mask)", captions)
    return _done(path)
