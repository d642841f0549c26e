"""What each API route answers, computed from a ``run.ServedModel`` as plain dicts and lists (no web framework here).
Arrays go out as nested lists rounded to 6 decimals: exact enough to redo the arithmetic by hand.  A view runs a copy
of the model no other thread runs (``ServedModel.models``), watched by the request's ``job`` (``jobs.Job``), which may
stop it between two passes of the whole model."""
from __future__ import annotations

import io

import numpy as np

from ..functional.activation import softmax
from ..nn import Linear, no_grad
from ..viz import cells, pictures
from ..viz.chain import layer_chain, run_chain
from ..viz.deconvnet import deconvnet
from ..viz.features import map_grid
from ..viz.grid import picture
from ..viz.kernels import conv_layers
from .jobs import OCCLUSION_BATCH

# A Linear layer's weights are sent to the page (GET /linear/L) up to this many: 4 M numbers, about 40 MB of JSON,
# as many as a large convolution's kernels; VGG's 25,088 × 4,096 would be a gigabyte.
MAX_LINEAR_WEIGHTS = 2 ** 22


class NotFound(LookupError):
    """A layer, class or test image that the run does not have (HTTP 404)."""


def array(x) -> list:
    """An array as nested lists of floats rounded to 6 decimals, for JSON."""
    return np.asarray(x, dtype=np.float64).round(6).tolist()


def png(image) -> bytes:
    """A picture (H, W) or (H, W, 3) in [0, 1], NaN borders (``viz.grid.tile``) white, as PNG bytes."""
    from PIL import Image
    pixels = np.where(np.isnan(image), 1.0, image)
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _outputs(model, x):
    """[(name, layer, output (C', H', W') or (F,))] of every layer of the chain of ``model`` (a copy the calling
    thread borrowed, ``jobs.Models``) for one model input x (C, H, W)."""
    chain = layer_chain(model)
    with no_grad():
        outputs = run_chain(chain, x[None])
    return [(name, layer, y[0]) for (name, layer), y in zip(chain, outputs)]


def predict(run, pixels, job=None) -> dict:
    """Every class with its probability (highest first), and the image as the network receives it."""
    x = run.normalize(pixels)
    with run.models.borrow(job) as trained:
        scores = pictures.scores_of(trained.model, x)
    return {"classes": ranked(run, scores), "pixels": array(pixels), "input": array(x)}


def ranked(run, scores, probabilities=None) -> list[dict]:
    """Every class with its score and probability, the most probable first."""
    if probabilities is None:
        probabilities = softmax(scores.astype(np.float64))
    order = np.argsort(-probabilities, kind="stable")
    return [{"index": int(i), "name": run.classes[i], "probability": float(probabilities[i]),
             "score": float(scores[i])} for i in order]


def window(layer) -> dict | None:
    """The sliding window of a convolution or pooling layer (kernel, stride, dilation, padding top/left),
    with which output (i, j) reads input rows i·stride − top + u·dilation (and columns alike); else None."""
    if not isinstance(getattr(layer, "kernel_size", None), tuple):
        return None
    padding = [pads[0] for pads in layer.pads] if hasattr(layer, "pads") else list(layer.padding)
    return {"kernel": list(layer.kernel_size), "stride": list(layer.stride),
            "dilation": list(getattr(layer, "dilation", (1, 1))), "padding": padding}


def layer_list(run) -> list[dict]:
    """Name, type, output shape and window of every layer of the chain (``ServedModel.layers``)."""
    x = np.zeros(run.input_shape, dtype=run.model.dtype)
    with run.models.borrow() as trained:
        outputs = _outputs(trained.model, x)
    return [{"name": name, "type": type(layer).__name__, "shape": list(y.shape), "window": window(layer)}
            for name, layer, y in outputs]


def features(run, pixels, layer: str | None = None, job=None) -> dict:
    """The maps (C', H', W') after every layer of the chain that outputs maps, or after ``layer`` only with
    "parts", what its cells are made of (``viz.cells.parts``: a batch norm's numbers, a block's F(x) and shortcut)."""
    if not run.layers():
        raise ValueError(f"{run.name}: feature maps follow the layers of a Sequential model, "
                         f"not a {type(run.model).__name__}")
    x = run.normalize(pixels)
    with run.models.borrow(job) as trained:
        outputs = _outputs(trained.model, x)
        return _features(outputs, x, layer)


def _features(outputs, x, layer: str | None) -> dict:
    """``features`` from the ``outputs`` of the borrowed copy, while it is still borrowed (``cells.parts`` runs
    the layer again)."""
    if layer is None:
        return {"input": array(x),
                "layers": [{"name": name, "type": type(l).__name__, "shape": list(y.shape), "maps": array(y)}
                           for name, l, y in outputs if y.ndim == 3]}
    names = [name for name, _, _ in outputs]
    if layer not in names:
        raise NotFound(f"no layer named '{layer}'; the layers are {', '.join(names)}")
    position = names.index(layer)
    _, found, y = outputs[position]
    if y.ndim != 3:
        raise ValueError(f"layer {layer} outputs shape {y.shape}, not feature maps")
    with no_grad():                                   # one layer: what its cells are made of too
        made_of = cells.parts(found, (outputs[position - 1][2] if position else x)[None])
    return {"input": array(x), "layers": [{"name": layer, "type": type(found).__name__, "shape": list(y.shape),
                                           "maps": array(y), "parts": _plain(made_of)}]}


def _plain(value):
    """``viz.cells.parts``'s answer for JSON: its arrays as ``array`` lists, the rest as it is."""
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return array(value) if isinstance(value, np.ndarray) else value


def feature_png(run, pixels, layer: str, job=None) -> bytes:
    """One layer's maps tiled into a PNG (``viz.features.map_grid``: one scale for the whole layer)."""
    maps = features(run, pixels, layer, job)["layers"][0]["maps"]
    return png(map_grid(np.asarray(maps)))


def kernel_list(run) -> list[dict]:
    """Every 2-D convolution: its dotted name, weight shape, and the layer of the chain whose output it reads
    ("input" for the image; null when the layer sits inside a block)."""
    chain = [name for name, _ in run.layers()]
    listing = []
    for name, layer in conv_layers(run.model):
        reads = None
        if name in chain:
            position = chain.index(name)
            reads = chain[position - 1] if position else "input"
        listing.append({"name": name, "shape": list(layer.params["weight"].shape), "reads": reads})
    return listing


def kernels(run, layer: str) -> dict:
    """One convolution's weight (K, C/groups, kh, kw), bias, groups and window: y = b + Σ w · x_window."""
    found = dict(conv_layers(run.model)).get(layer)
    if found is None:
        raise NotFound(f"no convolution layer named '{layer}'; the convolution layers are "
                       f"{', '.join(name for name, _ in conv_layers(run.model))}")
    bias = found.params.get("bias")
    return {"name": layer, "weight": array(found.params["weight"]), "groups": found.groups,
            "bias": array(bias) if bias is not None else None, "window": window(found)}


def linear(run, layer: str) -> dict:
    """One Linear layer of the chain: its weight (out, in) and bias (out,) or null, with which unit j of its output
    is y_j = b_j + Σ_i w_ji·x_i over its input x flattened (the page redoes this sum)."""
    found = dict(run.layers()).get(layer)
    if not isinstance(found, Linear):
        raise NotFound(f"no Linear layer named '{layer}'; the Linear layers are "
                       f"{', '.join(name for name, l in run.layers() if isinstance(l, Linear)) or 'none'}")
    weight, bias = found.params["weight"], found.params.get("bias")
    if weight.size > MAX_LINEAR_WEIGHTS:
        raise ValueError(f"layer {layer} has {weight.size:,} weights, more than the {MAX_LINEAR_WEIGHTS:,} the page "
                         f"is sent: its units' sums are not shown")
    return {"name": layer, "weight": array(weight), "bias": array(bias) if bias is not None else None}


def class_index(run, value: str | None, scores) -> int:
    """The class a request names (by number or by name), else the predicted one (highest score)."""
    if value is None or value == "":
        return int(np.argmax(scores))
    try:
        return run.trained.class_index(value)
    except ValueError as error:
        raise NotFound(str(error)) from None


def explain(run, pixels, class_value: str | None = None, layer: str | None = None, job=None) -> dict:
    """Saliency (H, W), divided by its maximum, and Grad-CAM of a class (default: the predicted one): at the
    layer's resolution (H', W'), and resampled to the image (H, W) with each cell on its receptive field's
    centre where the layers allow (``gradcam_centred``; else stretched)."""
    return _explanation(run, _inside(run, run.normalize(pixels), class_value, layer, job))


def analyze(run, pixels, class_value: str | None = None, layer: str | None = None, job=None) -> dict:
    """What the page shows of one image, from one forward and one backward pass (``viz.pictures.inside``):
    the prediction, the pixels and the network's input, every layer's maps, the outputs (F,) of the layers after
    them ("vectors": the classifier's Flatten, Linear and activations), saliency and Grad-CAM."""
    x = run.normalize(pixels)
    found = _inside(run, x, class_value, layer, job)
    return {"classes": ranked(run, found.scores, found.probabilities), "pixels": array(pixels), "input": array(x),
            "layers": [{"name": name, "type": type(l).__name__, "shape": list(y.shape), "maps": array(y)}
                       for name, l, y in found.layers if y.ndim == 3],
            "vectors": [{"name": name, "type": type(l).__name__, "shape": list(y.shape), "values": array(y)}
                        for name, l, y in found.layers if y.ndim == 1],
            "explanation": _explanation(run, found)}


def _inside(run, x, class_value, layer, job) -> pictures.Inside:
    """``viz.pictures.inside`` of the model input x, the class and layer of a request checked first."""
    if layer is not None and layer not in dict(run.layers()):
        raise NotFound(f"no layer named '{layer}'")
    if class_value:
        class_index(run, class_value, None)                 # an unknown class is refused before any work
    with run.models.borrow(job) as trained:
        return pictures.inside(trained, x, class_value or None, layer)


def _explanation(run, found: pictures.Inside) -> dict:
    cam = found.gradcam
    return {"class": found.chosen, "name": run.classes[found.chosen], "saliency": array(found.saliency),
            "gradcam": array(cam.cam) if cam else None, "gradcam_layer": cam.layer if cam else None,
            "gradcam_centred": cam.centred if cam else False, "gradcam_pixels": array(cam.pixels) if cam else None,
            "saliency_max": found.saliency_max}


def occlusion(run, pixels, class_value: str | None = None, size: str | None = None, stride: str | None = None,
              job=None) -> dict:
    """Zeiler & Fergus's occlusion map of a class: p(class) with a square of the mean pixel at each place
    (H', W'), and the change of p at the image's pixels (H, W), each pixel the mean over the squares on it:
    "change" p − p occluded (> 0 a drop, < 0 a rise), "drop" the same with the rises set to 0.  ``job`` may stop
    it between passes of ``OCCLUSION_BATCH`` squares."""
    size, stride = _count(size, "size", 6), _count(stride, "stride", 2)
    x = run.normalize(pixels)
    with run.models.borrow(job) as trained:
        c = class_index(run, class_value, pictures.scores_of(trained.model, x))
        found = pictures.occlusion(trained.model, x, c, size, stride, OCCLUSION_BATCH)
    return {"class": c, "name": run.classes[c], "probability": found.probability, "size": size, "stride": stride,
            "map": array(found.map), "drop": array(found.drop), "change": array(found.change)}


def _count(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number of pixels, got '{value}'")
    return int(value)


def deconv(run, pixels, layer: str | None, channel: str | None, job=None) -> dict:
    """ZFNet's deconvnet projection (C, H, W) of the strongest activation of map ``channel`` of ``layer``."""
    if layer not in dict(run.layers()):
        raise NotFound(f"no layer named '{layer}'; the layers are {', '.join(name for name, _ in run.layers())}")
    if channel is None or not channel.isdigit():
        raise ValueError(f"map must be a map number 0, 1, 2 …, got '{channel}'")
    with run.models.borrow(job) as trained:
        projection, position = deconvnet(trained.model, run.normalize(pixels), layer, int(channel))
    return {"layer": layer, "map": int(channel), "position": list(position), "projection": array(projection)}


def confusion(run, job=None) -> dict:
    """Confusion matrix of the run's best checkpoint on its test set, and every misclassified image (the page
    shows them a page at a time); ``job`` counts the test images done and may stop it between batches."""
    test = run.test_results(job)
    labels, predictions = test["set"].labels, test["predictions"]
    wrong = np.flatnonzero(predictions != labels)
    return {"classes": run.classes, "accuracy": test["accuracy"], "count": len(labels),
            "matrix": test["matrix"].tolist(),
            "misclassified": [{"index": int(i), "true": int(labels[i]), "predicted": int(predictions[i])}
                              for i in wrong]}


def test_image(run, index: int) -> bytes:
    """Test image ``index`` as a PNG (gray or RGB), at the size the model takes."""
    images = run.test_set().images
    if not 0 <= index < len(images):
        raise NotFound(f"no test image {index}: the test set has {len(images)} images (0…{len(images) - 1})")
    return png(picture(images[index]))
