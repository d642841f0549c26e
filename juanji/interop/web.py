"""A trained run as a static web page (``juanji export RUN --web DIR``): the page of ``juanji serve``, answered in
the browser by onnxruntime-web instead of by a server, in a folder any static host serves.

    DIR/index.html            the page (juanji/serve/static/index.html, marked data-juanji-export)
    DIR/static/               its modules and style; static/ort/: onnxruntime-web's wasm build
    DIR/static.json           what the page reads first (the format below)
    DIR/run/model.onnx        the model, normalisation inside, every layer's maps as extra outputs
    DIR/run/saliency.onnx     the backward pass (juanji.interop.onnx_backward): ∂S/∂x, ∂S/∂(each layer's maps)
    DIR/run/deconvnet.onnx    the deconvnet's projection of a signal put at a layer's maps
    DIR/run/metrics.json      the answers of the server's GET routes, as files: GET /metrics,
    DIR/run/kernels/L.json    GET /kernels/L (weights, bias, groups, window: what the per-cell arithmetic needs),
    DIR/run/linear/L.json     GET /linear/L (a Linear layer's weight and bias: its units' sums; none over the
                              server's limit, views.MAX_LINEAR_WEIGHTS),
    DIR/run/confusion.json    GET /confusion (evaluated once here, where the test set can be read),
    DIR/run/test-images/N.png GET /test-images/N for the misclassified images it lists

static.json: {"format": "juanji-web-export", "version": 1, "juanji": version, "onnxruntime_web": version,
"runs": [{"listing": what GET /api/runs lists for the run, "folder": "run",
"onnx": {"file", "input", "logits", "maps": {"input" or layer: graph output}, "vectors": {layer with outputs (F,):
graph output}},
"parts": {layer: viz.cells.parts as GET /features?layer=L answers it (a residual block's F(x) and S(x) as the
names of graph outputs, "body_output" and "shortcut_output", null for the block's input), or null},
"backward": {"saliency": {"file", "input", "seed", "gradient", "gradients": {layer: graph output}},
"deconvnet": {"file", "input", "signals": {layer: graph input}, "projection"} (absent without layers with maps),
"gradcam": {"default": the server's Grad-CAM layer or null, "centres": {layer: viz.gradcam.cell_centres or null}}}
or null where a layer has no ONNX backward, "unavailable": {"confusion": why, "saliency": why}}]};
static/local_api.js reads it.

onnxruntime-web comes from the npm registry once, pinned and hash-checked (``runtime_tarball``), into
$XDG_CACHE_HOME/juanji/; the page fetches nothing from anywhere else.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request

import numpy as np

from .. import __version__
from ..io import write_atomically
from ..limits import mib
from ..models.convnext import CNBlock
from ..models.mobile_blocks import InvertedResidual
from ..models.resnet import ResidualBlock
from ..serve import views
from ..serve.run import ServedModel, ServedRun, Unavailable
from ..nn import Linear, no_grad
from ..viz.chain import run_chain
from ..viz.gradcam import cell_centres, last_map_layer
from .onnx import DEFAULT_OPSET, ONNXExportError, save, to_onnx
from .onnx_backward import deconvnet_onnx, saliency_onnx

ORT_VERSION = "1.31.1"
ORT_TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_VERSION}.tgz"
# dist.integrity of the registry's metadata for that version (Subresource Integrity form: sha512, base64)
ORT_INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
ORT_MAX_BYTES = 64 * 2 ** 20            # the tarball is 34.6 MB; a larger answer is not it
# What the page loads: the wasm-only ES module, the Emscripten glue it imports and the WebAssembly binary that
# glue fetches (the same build serves one thread: numThreads = 1 needs no SharedArrayBuffer, so no
# cross-origin isolation headers from the host).
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_MEMBER_FOLDER = "package/dist"
DOWNLOAD_TIMEOUT = 60                   # seconds without an answer before the download is given up

FORMAT, VERSION = "juanji-web-export", 1
RUN_FOLDER = "run"
MAX_MISTAKES = 600                      # misclassified test images bundled (10 of the page's pages): a few KB each
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")     # a layer name that is a file name as it is (never "." or "..")
STATIC = os.path.join(os.path.dirname(os.path.dirname(__file__)), "serve", "static")


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "juanji")


def runtime_tarball() -> str:
    """The path of onnxruntime-web's tarball in the cache, downloaded first if it is not there; its sha512 is
    checked against ``ORT_INTEGRITY`` either way (a wrong file in the cache is refused, not replaced)."""
    path = os.path.join(cache_dir(), os.path.basename(ORT_TARBALL))
    if os.path.exists(path):
        with open(path, "rb") as f:
            if _integrity(f.read(ORT_MAX_BYTES + 1)) != ORT_INTEGRITY:
                raise ValueError(f"{path} is not onnxruntime-web {ORT_VERSION} (its sha512 differs from the one "
                                 f"pinned in juanji); delete it, or put the tarball from {ORT_TARBALL} there")
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with urllib.request.urlopen(ORT_TARBALL, timeout=DOWNLOAD_TIMEOUT) as answer:
            body = answer.read(ORT_MAX_BYTES + 1)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OSError(f"onnxruntime-web is not in the cache and could not be downloaded: {reason}; put the "
                      f"tarball ({ORT_TARBALL}) at {path}") from None
    if len(body) > ORT_MAX_BYTES or _integrity(body) != ORT_INTEGRITY:
        raise ValueError(f"the download of {ORT_TARBALL} is not onnxruntime-web {ORT_VERSION} (over "
                         f"{mib(ORT_MAX_BYTES)}, or its sha512 differs from the one pinned in juanji); nothing kept")
    write_atomically(path, lambda f: f.write(body))
    return path


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def extract_runtime(tarball, folder) -> None:
    """Write ``ORT_FILES`` from the tarball into ``folder``.  Every member's name is checked first (no absolute
    path, no ".."): a tarball that has one is refused whole.  Only members named exactly as expected are read,
    each a regular file (not a link or a device), and written under their own base name, so nothing can land
    outside ``folder`` (this Python may lack tarfile's data filter, 3.11.4+)."""
    wanted = {posixpath.join(ORT_MEMBER_FOLDER, name): name for name in ORT_FILES}
    found = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.name.startswith("/") or ".." in parts:
                raise ValueError(f"{tarball}: member '{member.name}' points outside the package; refused")
            if member.name in wanted:
                if not member.isreg():
                    raise ValueError(f"{tarball}: '{member.name}' is not a regular file; refused")
                found[wanted[member.name]] = archive.extractfile(member).read()
    missing = sorted(set(ORT_FILES) - set(found))
    if missing:
        raise ValueError(f"{tarball}: no {', '.join(missing)} in {ORT_MEMBER_FOLDER}/")
    os.makedirs(folder, exist_ok=True)
    for name, data in found.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def summands(name: str, layer) -> tuple[str, str | None] | None:
    """The traced names (``to_onnx``'s ``expose``) of a residual block's F(x) and S(x), None for S = the block's
    input, as ``viz.cells.parts`` takes the block apart; None for a layer that is no residual block."""
    if isinstance(layer, ResidualBlock):
        return f"{name}.{layer._body[-1]}", f"{name}.downsample"
    if isinstance(layer, InvertedResidual) and layer.use_res_connect:
        return f"{name}.{layer.branch()[-1]}", None
    if isinstance(layer, CNBlock):
        return f"{name}.stochastic_depth", None
    return None


def write_web(run_or_checkpoint, folder, data=None, opset: int = DEFAULT_OPSET, page: bool = True,
              mistakes: int = MAX_MISTAKES) -> dict:
    """Write the page of one run into ``folder`` (new, or an empty folder: nothing is overwritten), built in a
    temporary folder beside it that is renamed into place at the end, so a failed export leaves nothing.
    ``data``: where to read the test set from (as ``juanji serve --data``); ``page=False``: static.json and run/
    only, for a host that adds the page itself (``write_page``: the tutorial site's Playground); ``mistakes``:
    how many misclassified test images to bundle.  Returns static.json's content."""
    folder = os.path.abspath(folder)
    if os.path.lexists(folder) and (not os.path.isdir(folder) or os.listdir(folder)):
        raise FileExistsError(f"{folder} exists and is not an empty folder; give a new folder for the page")
    tarball = runtime_tarball() if page else None   # before any work: offline, this is the error to see
    trained_name = os.path.basename(os.path.normpath(run_or_checkpoint))
    run = ServedRun(os.path.splitext(trained_name)[0] or "run", run_or_checkpoint, data)
    run.current()                                   # Unavailable (with the reason) when it cannot be shown
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.", suffix=".tmp", dir=parent)
    try:
        if page:
            write_page(staging, tarball)
        entry = _write_run(run, os.path.join(staging, RUN_FOLDER), opset, mistakes)
        content = {"format": FORMAT, "version": VERSION, "juanji": __version__, "onnxruntime_web": ORT_VERSION,
                   "runs": [entry]}
        _write_json(os.path.join(staging, "static.json"), content)
        os.chmod(staging, 0o755)                    # mkdtemp's 0700 would hide the page from a web server
        os.rename(staging, folder)                  # onto an empty folder too; one filled meanwhile: an error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return content


def write_page(folder, tarball) -> None:
    """The page's files in ``folder`` (made if absent, files of the same names replaced): index.html marked as
    an export and its /static/ links made relative (the folder may be served below the host's root), static/,
    and onnxruntime-web from ``tarball`` in static/ort/."""
    shutil.copytree(STATIC, os.path.join(folder, "static"), ignore=shutil.ignore_patterns("index.html"),
                    dirs_exist_ok=True)
    extract_runtime(tarball, os.path.join(folder, "static", "ort"))
    with open(os.path.join(STATIC, "index.html"), encoding="utf-8") as f:
        page = f.read()
    marked, count = re.subn(r"<html\b", '<html data-juanji-export="static.json"', page, count=1)
    if not count or '"/static/' not in marked:
        raise RuntimeError(f"{STATIC}/index.html has no <html> tag or no /static/ link; juanji cannot export it")
    with open(os.path.join(folder, "index.html"), "w", encoding="utf-8") as f:
        f.write(marked.replace('"/static/', '"static/'))


def _write_run(run: ServedRun, folder, opset, mistakes) -> dict:
    """model.onnx and the files of the run's GET routes in ``folder``; the run's entry of static.json."""
    listing, model = run.describe(), run.current()
    with_maps = ["input"] + [layer["name"] for layer in listing["layers"] if len(layer["shape"]) == 3]
    vectors = [layer["name"] for layer in listing["layers"] if len(layer["shape"]) == 1]
    zero = np.zeros(model.input_shape, dtype=np.float32)
    parts, exposed = {}, with_maps + vectors
    for name, layer in model.layers():
        if name not in with_maps:
            continue
        made_of = views.features(model, zero, name)["layers"][0]["parts"]
        pair = summands(name, layer)
        if pair and made_of:
            made_of = {**{k: v for k, v in made_of.items() if k not in ("body", "shortcut")},
                       "body_output": pair[0], "shortcut_output": pair[1]}
            exposed += [n for n in pair if n is not None]
        elif made_of and made_of["kind"] == "batch_norm" and not made_of["running"]:
            made_of = None                          # normalised by each image's own statistics: not taken apart
        parts[name] = made_of
    exposed = list(dict.fromkeys(exposed))
    proto = to_onnx(model.model, model.input_shape, opset=opset, normalization=model.normalization, expose=exposed)
    outputs = _by_layer(exposed, proto.graph.output[1:])
    for made_of in parts.values():
        if made_of and "body_output" in made_of:
            made_of["body_output"] = outputs[made_of["body_output"]]
            made_of["shortcut_output"] = outputs.get(made_of["shortcut_output"])
    os.makedirs(folder)
    save(proto, os.path.join(folder, "model.onnx"))
    try:
        metrics = run.metrics()
    except Unavailable as error:                    # metrics.jsonl unreadable: the page says why, as the server
        metrics = {"epochs": [], "note": str(error)}
    _write_json(os.path.join(folder, "metrics.json"), metrics)
    linear = [name for name, layer in model.layers()
              if isinstance(layer, Linear) and layer.params["weight"].size <= views.MAX_LINEAR_WEIGHTS]
    for route, layers, answer in (("kernels", [kernel["name"] for kernel in listing["kernels"]], views.kernels),
                                  ("linear", linear, views.linear)):
        os.makedirs(os.path.join(folder, route))
        for name in layers:
            if not SAFE_NAME.fullmatch(name) or name in (".", ".."):
                raise ValueError(f"layer name {name!r} cannot be a file name of the page")
            _write_json(os.path.join(folder, route, f"{name}.json"), answer(model, name))
    unavailable = {}
    try:
        _write_confusion(model, folder, mistakes)
    except Unavailable as error:
        unavailable["confusion"] = f"the test set could not be read when the page was exported: {error}"
    try:
        backward = _write_backward(model, folder, opset, with_maps[1:])
    except ONNXExportError as error:                # a layer without an ONNX backward: the page keeps its note
        backward, unavailable["saliency"] = None, str(error)
    return {"listing": listing, "folder": RUN_FOLDER,
            "onnx": {"file": f"{RUN_FOLDER}/model.onnx", "input": proto.graph.input[0].name,
                     "logits": proto.graph.output[0].name,
                     "maps": {name: outputs[name] for name in with_maps},
                     "vectors": {name: outputs[name] for name in vectors}},
            "parts": parts, "backward": backward, "unavailable": unavailable}


def _write_backward(run: ServedModel, folder, opset, layers) -> dict:
    """saliency.onnx and deconvnet.onnx in ``folder``, ``layers`` (those with maps) taking part; static.json's
    "backward" of the run (``ONNXExportError`` where a layer has no ONNX backward)."""
    options = dict(input_shape=run.input_shape, opset=opset, normalization=run.normalization)
    saliency = saliency_onnx(run.model, gradients=layers, **options)
    entry = {"saliency": {"file": f"{RUN_FOLDER}/saliency.onnx", "input": saliency.graph.input[0].name,
                          "seed": saliency.graph.input[1].name, "gradient": saliency.graph.output[0].name,
                          "gradients": _by_layer(layers, saliency.graph.output[1:])},
             "gradcam": {"default": None, "centres": {name: cell_centres(run.model, name) for name in layers}}}
    graphs = {"saliency.onnx": saliency}
    if layers:
        deconvnet = deconvnet_onnx(run.model, layers, **options)
        graphs["deconvnet.onnx"] = deconvnet
        entry["deconvnet"] = {"file": f"{RUN_FOLDER}/deconvnet.onnx", "input": deconvnet.graph.input[0].name,
                              "signals": _by_layer(layers, deconvnet.graph.input[1:]),
                              "projection": deconvnet.graph.output[0].name}
        chain = run.layers()
        with no_grad():
            outputs = run_chain(chain, np.zeros((1, *run.input_shape), dtype=np.float32))
        entry["gradcam"]["default"] = last_map_layer(chain, outputs)
    for file, proto in graphs.items():
        save(proto, os.path.join(folder, file))
    return entry


def _by_layer(layers, values) -> dict:
    """{layer: the name of its graph input or output}, ``values`` (``onnx.ValueInfoProto``s) in the order of
    ``layers``: those a layer's exposed map, gradient or signal is read from."""
    return {layer: value.name for layer, value in zip(layers, values)}


def _write_confusion(run: ServedModel, folder, mistakes) -> None:
    """GET /confusion's answer, its list of mistakes cut to the first ``mistakes``, whose images are bundled."""
    answer = views.confusion(run)
    answer["misclassified"] = answer["misclassified"][:mistakes]
    os.makedirs(os.path.join(folder, "test-images"))
    for mistake in answer["misclassified"]:
        with open(os.path.join(folder, "test-images", f"{mistake['index']}.png"), "wb") as f:
            f.write(views.test_image(run, mistake["index"]))
    _write_json(os.path.join(folder, "confusion.json"), answer)


def _write_json(path, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, separators=(",", ":"), allow_nan=False)
