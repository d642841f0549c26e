"""The Playground (docs/playground.md): the run's part committed in docs/playground/app/ has the form juanji's
exporter writes now (its script's quick run, here, is the reference), and its model makes exactly the mistakes and
the confusion matrix it lists; the built site embeds the app, whose page and onnxruntime-web docs/hooks/playground.py
adds; and in Debian's chromium, the site's server STOPPED, the app calls the README's ankle boot an ankle boot with
the probabilities onnxruntime gives in Python for the committed model."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import numpy as np
import pytest
from PIL import Image

import juanji
from juanji import models
from juanji.data import FASHION_MNIST_CLASSES, load_mnist
from juanji.functional.activation import softmax
from juanji.interop import web
from juanji.metrics import confusion_matrix
from juanji.trained import TrainedModel
from test_docs import DOCS, ROOT, SITE_PATH
from test_experiments import shape_of
from test_site import _chromium, _serving, tags

ort = pytest.importorskip("onnxruntime")

APP = DOCS / "playground" / "app"
SCRIPT = DOCS / "playground" / "make_playground.py"
BOOT = DOCS / "images" / "ankle-boot.png"
MAX_BYTES = 2 * 2 ** 20     # what the repository carries for the Playground
TOLERANCE = 1e-4            # float32: onnxruntime-web sums in another order than onnxruntime

spec = importlib.util.spec_from_file_location("make_playground", SCRIPT)
make_playground = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_playground)


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def logits(session, entry, pixels: np.ndarray) -> np.ndarray:
    """The committed model's logits for pixels (N, 1, 28, 28) in [0, 1], by onnxruntime."""
    return session.run([entry["onnx"]["logits"]], {entry["onnx"]["input"]: pixels.astype(np.float32)})[0]


@pytest.fixture(scope="module")
def entry():
    return read_json(APP / "static.json")["runs"][0]


@pytest.fixture(scope="module")
def session():
    return ort.InferenceSession(str(APP / "run" / "model.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The script's quick run: a folder that juanji's exporter, as it is now, writes for LeNet-5; made into a
    folder that held an earlier run (replaced only once the new one is complete)."""
    out = tmp_path_factory.mktemp("fresh") / "app"
    out.mkdir()
    (out / "old.txt").write_text("the folder of an earlier run")
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: test accuracy ")
    assert [p.name for p in out.parent.iterdir()] == ["app"]     # no temporary folder left behind
    return out


def test_the_committed_folder_has_the_form_juanjis_exporter_writes_now(fresh):
    """Files and JSON fields as a fresh export's (when juanji's exporter changes, rerun the script)."""
    assert [n for n in files(APP) if "/test-images/" not in n] == [n for n in files(fresh) if "/test-images/" not in n]
    for name in files(APP):
        if name.endswith(".json"):
            assert shape_of(read_json(APP / name)) == shape_of(read_json(fresh / name)), name
    content = read_json(APP / "static.json")
    assert (content["format"], content["version"]) == (web.FORMAT, web.VERSION)
    assert content["onnxruntime_web"] == web.ORT_VERSION        # the runtime the site's build adds beside it
    assert content["juanji"] == read_json(fresh / "static.json")["juanji"]
    assert not (APP / "index.html").exists() and not (APP / "static").exists()      # added when the site is built
    assert sum((APP / name).stat().st_size for name in files(APP)) < MAX_BYTES


def test_the_committed_folder_is_lenet5_on_fashion_mnist_and_says_how_it_was_made(entry, session):
    listing = entry["listing"]
    assert (listing["name"], listing["model"], listing["input_shape"]) == ("lenet5", "lenet5", [1, 28, 28])
    assert listing["classes"] == FASHION_MNIST_CLASSES and entry["unavailable"] == {}
    confusion = read_json(APP / "run" / "confusion.json")
    assert len(confusion["misclassified"]) == make_playground.MISTAKES
    assert {f"{m['index']}.png" for m in confusion["misclassified"]} == \
        {p.name for p in (APP / "run" / "test-images").iterdir()}
    assert [i.name for i in session.get_inputs()] == [entry["onnx"]["input"]]
    assert {entry["onnx"]["logits"], *entry["onnx"]["maps"].values()} <= {o.name for o in session.get_outputs()}
    epochs = read_json(APP / "run" / "metrics.json")["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4] and listing["epoch"] == 4     # the last epoch, the best
    assert epochs[-1]["test_accuracy"] == listing["test_accuracy"]
    made_by = read_json(APP / "made-by.json")
    assert made_by["command"] == "python docs/playground/make_playground.py"
    assert made_by["training"] == "juanji train --epochs 4" and made_by["juanji"] == juanji.__version__
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", made_by["date"]) and made_by["test_accuracy"] == listing["test_accuracy"]


def test_the_committed_model_makes_the_mistakes_and_the_matrix_it_lists(entry, session):
    confusion = read_json(APP / "run" / "confusion.json")
    mistakes = confusion["misclassified"]
    bundled = np.stack([np.asarray(Image.open(APP / "run" / "test-images" / f"{m['index']}.png"), dtype=np.float32)
                        for m in mistakes])[:, None] / 255
    assert logits(session, entry, bundled).argmax(axis=1).tolist() == [m["predicted"] for m in mistakes]
    # the whole test set, read as training read it: the same matrix, accuracy and first mistakes
    test = load_mnist(train=False)
    images = np.asarray(test.images, dtype=np.float32)
    predicted = np.concatenate([logits(session, entry, images[i:i + 2000]).argmax(axis=1)
                                for i in range(0, len(images), 2000)])
    labels = np.asarray(test.labels)
    assert confusion_matrix(labels, predicted, 10).tolist() == confusion["matrix"]
    assert confusion["accuracy"] == pytest.approx(float(np.mean(predicted == labels)))
    assert confusion["accuracy"] == pytest.approx(entry["listing"]["test_accuracy"])
    wrong = np.flatnonzero(predicted != labels)[:make_playground.MISTAKES]
    assert [(m["index"], m["true"], m["predicted"]) for m in mistakes] == \
        list(zip(wrong.tolist(), labels[wrong].tolist(), predicted[wrong].tolist()))
    np.testing.assert_array_equal(bundled, images[wrong])     # the PNGs are those test images, exactly


def test_the_script_says_how_it_was_run_and_keeps_the_committed_folder(fresh):
    made_by = read_json(fresh / "made-by.json")
    assert made_by["command"] == f"python docs/playground/make_playground.py --quick --out {fresh}"
    assert made_by["training"] == "juanji train --epochs 1 --limit 300"
    before = {name: (APP / name).read_bytes() for name in files(APP)}
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 2 and "--quick makes no model worth showing: give --out DIR" in result.stderr
    assert {name: (APP / name).read_bytes() for name in files(APP)} == before


def iframe_and_link(html: Path) -> tuple[str, list[str]]:
    found = tags(html)
    return (next(attrs["src"] for tag, attrs in found if tag == "iframe"),
            [attrs.get("href") for tag, attrs in found if tag == "a"])


def test_the_built_pages_embed_the_app_in_their_language(site):
    for folder, language in (("playground", "en"), ("zh/playground", "zh")):
        source, links = iframe_and_link(site / folder / "index.html")
        url = urljoin(SITE_PATH + folder + "/", source)
        assert (urlsplit(url).path, urlsplit(url).query) == (SITE_PATH + "playground/app/", f"lang={language}")
        assert source in links, f"{folder}: no link to open the app on a page of its own"
    app = site / "playground" / "app"
    assert '<html data-juanji-export="static.json"' in (app / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (app / "static" / "ort").iterdir()) == sorted(web.ORT_FILES)
    assert {p.name for p in (ROOT / "juanji" / "serve" / "static").iterdir()} - {"index.html"} <= \
        {p.name for p in (app / "static").iterdir()}
    for name in files(APP):
        assert (app / name).read_bytes() == (APP / name).read_bytes(), name
    assert not (site / "zh" / "playground" / "app").exists()   # one app, for both languages


def juanji_prepared(listing) -> np.ndarray:
    """The ankle boot as ``juanji predict`` prepares it for this run (its input shape and normalisation; the
    weights play no part)."""
    trained = TrainedModel(model=models.create(listing["model"]).eval(), classes=listing["classes"],
                           input_shape=tuple(listing["input_shape"]), normalization=tuple(listing["normalization"]),
                           alphabet=None, config={}, epoch=listing["epoch"], test_accuracy=listing["test_accuracy"],
                           checkpoint=str(APP / "run" / "model.onnx"))
    return trained.prepare(BOOT)[0]


@pytest.mark.slow
def test_the_playground_predicts_the_ankle_boot_in_the_browser_alone(site, entry, session):
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    pixels = juanji_prepared(entry["listing"])
    probabilities = softmax(logits(session, entry, pixels[None])[0].astype(np.float64))
    assert FASHION_MNIST_CLASSES[int(probabilities.argmax())] == "Ankle boot"
    served = site.parents[len(Path(SITE_PATH.strip("/")).parts) - 1]
    with sync_api.sync_playwright() as playwright:
        browser = _chromium(playwright)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors, asked = [], []
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda error: errors.append(str(error)))

            def app(base, language):
                """The app's frame in the page, once its model has predicted the blank canvas."""
                tab.frame_locator("iframe").locator("#topk li").first.wait_for()
                frame = next(f for f in tab.frames if f.url.startswith(base + "playground/app/"))
                assert frame.evaluate("document.documentElement.lang") == language
                return frame

            with _serving(served, SITE_PATH) as base:
                tab.goto(base + "zh/playground/")
                app(base, "zh")
                tab.goto(base + "playground/")
                frame = app(base, "en")
                tab.wait_for_load_state("networkidle")
            tab.on("request", lambda request: asked.append(request.url))      # the server has stopped

            frame.set_input_files("#upload", str(BOOT))
            frame.wait_for_function("document.querySelector('#topk').dataset.top === 'Ankle boot'")
            assert frame.locator("#topk li").first.inner_text() == f"Ankle boot {100 * probabilities[9]:.1f} %"
            answer = frame.evaluate("""async (bytes) => {
                const api = await import('./static/api.js');
                const run = (await api.getJSON('/api/runs')).runs[0];
                return api.postImage(run, 'predict', new Blob([Uint8Array.from(bytes)], {type: 'image/png'}));
            }""", list(BOOT.read_bytes()))
            np.testing.assert_allclose(answer["pixels"], pixels, atol=1e-6, rtol=0)
            got = {c["index"]: c["probability"] for c in answer["classes"]}
            np.testing.assert_allclose([got[i] for i in range(10)], probabilities, atol=TOLERANCE, rtol=0)
            assert asked == [] and errors == [], (asked, errors)
        finally:
            browser.close()
