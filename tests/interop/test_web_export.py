"""``juanji export RUN --web DIR``: the page of ``juanji serve`` as static files.  A really trained LeNet-5 is
exported by the real command, served by ``python -m http.server`` on 127.0.0.1, loaded in Debian's chromium
(Playwright), and the server STOPPED: the page then predicts, shows every layer's maps and prepares image files in
the browser alone, equal to juanji's own numbers.  onnxruntime-web comes from the npm registry once (the real
download, into the user's cache) and is checked against its pinned hash."""
import base64
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from juanji import models  # noqa: E402
from juanji import random as jrandom  # noqa: E402
from juanji.functional.activation import softmax  # noqa: E402
from juanji.interop import web  # noqa: E402
from juanji.interop.onnx import to_onnx  # noqa: E402
from juanji.nn import no_grad  # noqa: E402
from juanji.serve import views  # noqa: E402
from juanji.serve.run import ServedRun  # noqa: E402
from juanji.trained import TrainedModel  # noqa: E402
from juanji.viz import cells  # noqa: E402
from juanji.viz.chain import layer_chain, run_chain  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
BOOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "ankle-boot.png"
TOLERANCE = 1e-4        # float32: onnxruntime-web's sums in another order than NumPy's


def juanji(*arguments, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "juanji.cli", *map(str, arguments)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def page(lenet5_run, tmp_path_factory):
    """The exported folder, written by the command line into an empty folder made before."""
    folder = tmp_path_factory.mktemp("page") / "lenet5-page"
    folder.mkdir()
    result = juanji("export", lenet5_run, "--web", folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {folder}: the page of lenet5 (lenet5, 6 layers with maps")
    assert [p.name for p in folder.parent.iterdir()] == ["lenet5-page"]      # no temporary folder left behind
    return folder


def offline_env(tmp_path):
    """The environment of a machine whose cache is empty and whose network refuses: every HTTPS request goes to a
    proxy on a port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "https_proxy": f"http://127.0.0.1:{port}",
            "HTTPS_PROXY": f"http://127.0.0.1:{port}"}


# -- onnxruntime-web: pinned, hash-checked, extracted by name -----------------------------------------------------
def test_offline_without_the_tarball_is_one_line_naming_where_to_put_it(lenet5_run, tmp_path):
    result = juanji("export", lenet5_run, "--web", tmp_path / "page", env=offline_env(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("juanji: error: onnxruntime-web is not in the cache and could not be "
                                    "downloaded: ")
    assert result.stderr.rstrip().endswith(f"put the tarball ({web.ORT_TARBALL}) at "
                                           f"{tmp_path / 'cache' / 'juanji' / 'onnxruntime-web-1.31.1.tgz'}")
    assert not (tmp_path / "page").exists()


def test_a_tarball_in_the_cache_that_is_not_the_pinned_one_is_refused_and_kept(lenet5_run, tmp_path):
    cached = tmp_path / "cache" / "juanji" / "onnxruntime-web-1.31.1.tgz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the tarball")
    result = juanji("export", lenet5_run, "--web", tmp_path / "page", env=offline_env(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"{cached} is not onnxruntime-web 1.31.1 (its sha512 differs" in result.stderr
    assert cached.read_bytes() == b"not the tarball" and not (tmp_path / "page").exists()


def test_the_tarball_is_downloaded_once_and_matches_its_pinned_hash():
    path = web.runtime_tarball()                   # the real download on a fresh machine, the cache after
    assert path == os.path.join(web.cache_dir(), "onnxruntime-web-1.31.1.tgz")
    digest = base64.b64encode(hashlib.sha512(Path(path).read_bytes()).digest()).decode()
    assert f"sha512-{digest}" == web.ORT_INTEGRITY == ("sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7"
                                                      "VsPdSQeS7NmuZPXrQ73k82URw==")     # the registry's dist.integrity


def tarball(path, members):
    """A .tgz of ``members``: (name, bytes) for a file, (name, "->target") for a symbolic link."""
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


@pytest.mark.parametrize("members, problem", [
    ([("package/dist/../../../evil.mjs", b"x")], "points outside the package"),
    ([("/etc/evil.mjs", b"x")], "points outside the package"),
    ([(f"package/dist/{name}", b"x") for name in web.ORT_FILES[1:]]
     + [("package/dist/ort.wasm.min.mjs", "->/etc/passwd")], "is not a regular file"),
    ([("package/dist/ort.wasm.min.mjs", b"x")], "no ort-wasm-simd-threaded.mjs, ort-wasm-simd-threaded.wasm"),
], ids=["dot-dot", "absolute", "link", "missing"])
def test_extraction_refuses_members_outside_the_package_links_and_missing_files(tmp_path, members, problem):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=problem):
        web.extract_runtime(tarball(tmp_path / "bad.tgz", members), out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.tgz"]


def test_extraction_writes_the_three_files_by_name(tmp_path):
    members = [(f"package/dist/{name}", name.encode()) for name in web.ORT_FILES] + [("package/README.md", b"r")]
    web.extract_runtime(tarball(tmp_path / "ok.tgz", members), tmp_path / "out")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == {n: n.encode() for n in web.ORT_FILES}


# -- the command ----------------------------------------------------------------------------------------------
def test_nothing_saved_is_overwritten_and_the_onnx_file_is_optional_only_with_web(lenet5_run, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    result = juanji("export", lenet5_run, "--web", full)
    assert result.returncode == 2 and result.stderr == (f"juanji: error: {full} exists and is not an empty folder; "
                                                        f"give a new folder for the page\n")
    assert [p.name for p in full.iterdir()] == ["notes.txt"]
    result = juanji("export", lenet5_run)
    assert result.returncode == 2 and "give the ONNX file to write (MODEL.onnx), or --web DIR" in result.stderr
    result = juanji("export", lenet5_run, tmp_path / "m.onnx", "--data", tmp_path)
    assert result.returncode == 2 and "--data is read for --web's confusion matrix only" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]          # no temporary folder left behind


def test_the_folder_holds_the_server_answers_and_a_model_with_every_layers_maps(page, lenet5_run):
    content = json.loads((page / "static.json").read_text())
    assert (content["format"], content["version"], content["onnxruntime_web"]) == ("juanji-web-export", 1, "1.31.1")
    entry = content["runs"][0]
    assert entry["listing"]["name"] == "lenet5" and entry["listing"]["classes"][9] == "Ankle boot"
    assert sorted(p.name for p in (page / "static" / "ort").iterdir()) == sorted(web.ORT_FILES)
    html = (page / "index.html").read_text()
    assert '<html data-juanji-export="static.json"' in html and '"/static/' not in html
    assert json.loads((page / "run" / "kernels" / "0.json").read_text())["groups"] == 1
    confusion = json.loads((page / "run" / "confusion.json").read_text())
    assert confusion["accuracy"] == pytest.approx(entry["listing"]["test_accuracy"])
    assert len(confusion["misclassified"]) == web.MAX_MISTAKES           # 3,054 mistakes: the first 600 bundled
    assert {f"{m['index']}.png" for m in confusion["misclassified"]} == {p.name for p in (page / "run" /
                                                                                           "test-images").iterdir()}
    trained = TrainedModel.load(lenet5_run)
    pixels = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    session = ort.InferenceSession(str(page / "run" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": pixels})))
    chain = layer_chain(trained.model)
    with no_grad():
        x = trained.normalize(pixels)
        outputs = run_chain(chain, x)
        expected = dict(zip([name for name, _ in chain], outputs), input=x)
    np.testing.assert_allclose(got[entry["onnx"]["logits"]], outputs[-1], atol=1e-5, rtol=0)
    assert set(entry["onnx"]["maps"]) == {"input", "0", "1", "2", "3", "4", "5"}
    for name, output in entry["onnx"]["maps"].items():
        np.testing.assert_allclose(got[output], expected[name], atol=1e-5, rtol=0)
    assert entry["parts"]["1"] == {"kind": "per_channel"} and entry["parts"]["0"] is None
    backward = entry["backward"]                    # the backward graphs: saliency, Grad-CAM, the deconvnet
    assert (backward["saliency"]["file"], backward["deconvnet"]["file"]) == ("run/saliency.onnx", "run/deconvnet.onnx")
    assert set(backward["saliency"]["gradients"]) == set(backward["deconvnet"]["signals"]) == set(
        entry["onnx"]["maps"]) - {"input"}
    assert backward["gradcam"]["default"] == "4" and backward["gradcam"]["centres"]["5"] == [[5.5, 4.0], [5.5, 4.0]]


def test_a_residual_blocks_two_summands_are_outputs_of_the_model():
    jrandom.seed(3)
    model = models.create("resnet20").eval()
    chain = layer_chain(model)
    blocks = [(name, layer, web.summands(name, layer)) for name, layer in chain if web.summands(name, layer)]
    exposed = [n for _, _, pair in blocks for n in pair if n is not None]
    proto = to_onnx(model, expose=exposed)
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip(exposed, session.run([o.name for o in proto.graph.output[1:]], {"input": x})))
    with no_grad():
        inputs = dict(zip([name for name, _ in chain[1:]], run_chain(chain, x)))
        for name, layer, (body, shortcut) in blocks:
            found = cells.parts(layer, inputs[name])
            np.testing.assert_allclose(got[body][0], found["body"], atol=1e-5, rtol=0)
            np.testing.assert_allclose(got[shortcut][0], found["shortcut"], atol=1e-5, rtol=0)
    assert len(blocks) == 9 and any(found["shortcut_reads"]["kind"] == "subsample" for found in [
        cells.parts(layer, inputs[name]) for name, layer, _ in blocks])


# -- the page, in a browser, after its server is stopped --------------------------------------------------------
def photo(path, size, light):
    """An RGB photo of a dark blob on a light ground (or the reverse), not square, saved as PNG."""
    from PIL import Image
    h, w = size
    rows, columns = np.mgrid[0:h, 0:w]
    blob = ((rows - h * 0.45) / (h * 0.3)) ** 2 + ((columns - w * 0.55) / (w * 0.25)) ** 2 < 1
    rgb = np.where(blob[..., None], [40, 60, 90], [225, 215, 200] if light else [10, 12, 20])
    rgb = (rgb + np.random.default_rng(h).integers(0, 20, (h, w, 3))).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="apt-get install chromium (see the Makefile)")
def test_the_page_predicts_and_shows_maps_in_the_browser_alone(page, lenet5_run, tmp_path):
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    trained = TrainedModel.load(lenet5_run)
    photos = [photo(tmp_path / "light.png", (45, 31), True), photo(tmp_path / "dark.png", (30, 52), False)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(page)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors, asked = [], []
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.on("request", lambda r: asked.append(r.url))
            for _ in range(50):                     # the server up
                try:
                    tab.goto(f"http://127.0.0.1:{port}/")
                    break
                except sync_api.Error:
                    time.sleep(0.1)
            tab.wait_for_selector("#topk li")        # the blank canvas predicted: the model is loaded
            tab.click("#load-confusion")
            tab.wait_for_selector("#confusion td")
            assert "69.46 %" in tab.inner_text("#accuracy")        # computed at export, where the test set was
            tab.wait_for_function("[...document.querySelectorAll('#misclassified img')].every((i) => i.complete)")
            assert all(url.startswith(f"http://127.0.0.1:{port}/") for url in asked), asked
            server.terminate()
            server.wait(timeout=20)
            asked.clear()

            tab.set_input_files("#upload", str(BOOT))       # an upload, prepared and predicted in the browser
            tab.wait_for_function("document.querySelector('#topk').dataset.top === 'Ankle boot'")
            x_pixels, x = trained.prepare(BOOT)
            with no_grad():
                scores = trained.model(x[None])[0]
            probabilities = softmax(scores.astype(np.float64))
            shown = tab.locator("#topk li").all_inner_texts()
            assert shown[0] == f"Ankle boot {100 * probabilities[9]:.1f} %"
            tab.wait_for_function("document.querySelector('#occlusion-note').textContent.startsWith("
                                  "'occlusion of “Ankle boot”')")
            served = ServedRun("lenet5", lenet5_run).current()     # what juanji serve answers: its views
            shown = views.explain(served, x_pixels)
            tab.wait_for_function("document.querySelector('#gradcam-note').textContent.startsWith('Grad-CAM of')")
            assert float(tab.get_attribute("#saliency-scale", "data-high")) == pytest.approx(shown["saliency_max"],
                                                                                              rel=TOLERANCE)
            assert tab.inner_text("#gradcam-note").startswith(f"Grad-CAM of “Ankle boot” at layer "
                                                              f"{shown['gradcam_layer']}: ReLU(Σ_k α_k A_k), ")

            api = "const api = await import('./static/api.js'); const run = (await api.getJSON('/api/runs')).runs[0];"
            answer = tab.evaluate(f"async (bytes) => {{ {api} const blob = new Blob([Uint8Array.from(bytes)], "
                                  f"{{type: 'image/png'}}); return api.postImage(run, 'predict', blob); }}",
                                  list(BOOT.read_bytes()))
            assert answer["pixels"] == x_pixels.tolist()
            got = {c["index"]: c["probability"] for c in answer["classes"]}
            np.testing.assert_allclose([got[i] for i in range(10)], probabilities, atol=TOLERANCE, rtol=0)

            features = tab.evaluate(f"async (pixels) => {{ {api} return api.postPixels(run, 'features', pixels); }}",
                                    x_pixels.tolist())
            chain = layer_chain(trained.model)
            with no_grad():
                outputs = dict(zip([name for name, _ in chain], run_chain(chain, x[None])))
            np.testing.assert_allclose(features["input"], x, atol=1e-6, rtol=0)
            assert [layer["name"] for layer in features["layers"]] == ["0", "1", "2", "3", "4", "5"]
            for layer in features["layers"]:
                np.testing.assert_allclose(layer["maps"], outputs[layer["name"]][0], atol=TOLERANCE, rtol=0)

            for path in photos:                     # Pillow's resampling and juanji.data.photo, redone in JavaScript
                for center in (False, True):
                    prepared = tab.evaluate(
                        f"async ([bytes, center]) => {{ {api} const blob = new Blob([Uint8Array.from(bytes)], "
                        f"{{type: 'image/png'}}); return (await api.postImage(run, `predict?center=${{center}}`, "
                        f"blob)).pixels; }}", [list(path.read_bytes()), "yes" if center else "no"])
                    expected = trained.prepare(path, center=center)[0]
                    np.testing.assert_allclose(prepared, expected, atol=1e-6, rtol=0, err_msg=f"{path} {center}")

            tab.click('.maps canvas[data-layer="0"][data-map="2"]')   # the arithmetic of one cell, its numbers ours
            tab.hover("#detail-map")
            tab.wait_for_function("document.querySelector('#mac').textContent.includes('the network computed')")
            line = tab.locator("#mac p").last.inner_text()
            found = re.search(r"^y\[2, (\d+), (\d+)\] = .* = (-?[\d.]+)\s+\(the network computed (-?[\d.]+)\)$", line)
            i, j, ours, network = int(found[1]), int(found[2]), float(found[3]), float(found[4])
            assert abs(ours - network) < 1e-3 and abs(network - outputs["0"][0, 2, i, j]) < 1e-4 and i > 0 < j
            tab.wait_for_function("document.querySelector('#detail-deconv-note').textContent.startsWith("
                                  "'deconvnet: its strongest cell')")
            for query, class_value, layer in (("explain?class=", None, None), ("explain?class=3&layer=0", "3", "0")):
                got = tab.evaluate(f"async ([what, pixels]) => {{ {api} return api.postPixels(run, what, pixels); }}",
                                   [query, x_pixels.tolist()])          # saliency and Grad-CAM of saliency.onnx
                expected = views.explain(served, x_pixels, class_value, layer)
                assert {k: got[k] for k in ("class", "name", "gradcam_layer", "gradcam_centred")} == {
                    k: expected[k] for k in ("class", "name", "gradcam_layer", "gradcam_centred")}
                assert got["saliency_max"] == pytest.approx(expected["saliency_max"], rel=TOLERANCE)
                for key in ("saliency", "gradcam", "gradcam_pixels"):       # the server's rounded to 6 decimals
                    np.testing.assert_allclose(got[key], expected[key], rtol=0, err_msg=f"{query} {key}",
                                               atol=TOLERANCE * np.abs(expected[key]).max() + 5e-7)
            got = tab.evaluate(f"async (pixels) => {{ {api} return api.postPixels(run, 'deconv?layer=3&map=2', "
                               f"pixels); }}", x_pixels.tolist())         # the deconvnet of deconvnet.onnx
            expected = views.deconv(served, x_pixels, "3", "2")
            assert got["position"] == expected["position"]
            np.testing.assert_allclose(got["projection"], expected["projection"], rtol=0,
                                       atol=TOLERANCE * np.abs(expected["projection"]).max() + 5e-7)
            # a blank image ties every max-pool window: onnxruntime-web routes as onnxruntime (juanji's forward sums,
            # taken in another order, end a last bit apart and break some ties otherwise)
            blank = np.zeros((1, 28, 28), np.float32)
            got = tab.evaluate(f"async (pixels) => {{ {api} return api.postPixels(run, 'explain?class=9', pixels); }}",
                               blank.tolist())
            saliency = ort.InferenceSession(str(page / "run" / "saliency.onnx"), providers=["CPUExecutionProvider"])
            gradient, = saliency.run(["input_gradient"], {"input": blank[None],
                                                          "seed": np.eye(10, dtype=np.float32)[[9]]})
            strongest = np.abs(gradient[0]).max(axis=0)
            np.testing.assert_allclose(got["saliency"], strongest / strongest.max(), atol=TOLERANCE, rtol=0)
            assert asked == [] and errors == [], (asked, errors)      # nothing fetched once the server stopped
            browser.close()
    finally:
        server.kill()
        server.wait(timeout=20)
