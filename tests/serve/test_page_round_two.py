"""The page, round two (issue #30), in Debian's chromium driven by Playwright against ``juanji serve`` of a LeNet-5,
a small ResNet-20 and a "dead" run (LeNet-5 with its classifier's and one kernel's weights set to 0): the image kept
across runs and compared side by side, residual blocks, batch norm and global pooling explained with their own
numbers, colour bars on every map and a plain word for an all-zero one, curves with ticks and the learning rate,
and every mistake a page at a time."""
import json
import re
import shutil
import urllib.request

import numpy as np
import pytest
from live_server import CHROMIUM, analysed_page, serving
from test_page import BOOT

from juanji import checkpoint as ckpt
from juanji.trained import TrainedModel

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason="apt-get install chromium (see the Makefile)")]
COMPUTED = re.compile(r"= (-?[\d.]+)\s+\(the network computed (-?[\d.]+)\)")


@pytest.fixture(scope="module")
def runs(tiny_run, resnet20_run, tmp_path_factory):
    """{name: run directory}: the LeNet-5 and the ResNet-20 of conftest, and the dead LeNet-5."""
    dead = tmp_path_factory.mktemp("round-two") / "dead"
    shutil.copytree(tiny_run, dead)
    trained = TrainedModel.load(dead)
    state = ckpt.load(trained.checkpoint)
    model = trained.model
    model[-1].params["weight"][...] = 0                # every score its bias alone: no pixel matters
    model[0].params["weight"][2] = model[0].params["bias"][2] = 0     # map 2 of the first conv: all 0
    ckpt.save(trained.checkpoint, model, **{k: v for k, v in state.meta.items()
                                            if k not in ("format", "version", "model")})
    return {"lenet5": tiny_run, "resnet20": resnet20_run, "dead": dead}


@pytest.fixture(scope="module")
def url(runs):
    with serving(*runs.values()) as address:
        yield address


@pytest.fixture
def page(browser, url):
    """A fresh page on the first run, its blank image analysed; no JavaScript error may happen on it."""
    with analysed_page(browser, url + "/", timeout=90_000) as opened:   # a ResNet's occlusion on a busy 2-core machine
        yield opened


def api(url, path, body=None, content_type="image/png"):
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": content_type} if body else {})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def again(request):
    """The answer to a request the page made, asked again here (Chromium keeps no large answer; the convolutions
    may take another path the second time, so it agrees to about 1e-6). Chromium shows no body that is a file (a
    Blob): that is the one file these tests upload."""
    body = request.post_data_buffer
    if body is None:
        with open(BOOT, "rb") as f:
            body = f.read()
    answer = urllib.request.Request(request.url, data=body, headers={"Content-Type": request.headers["content-type"]})
    with urllib.request.urlopen(answer, timeout=60) as found:
        return json.load(found)


def analysed(page, trigger, name=""):
    """Do trigger() and wait until the page shows the analysis (of run `name`, if given) and the occlusion that
    follows it: (the analysis request, the occlusion's answer)."""
    with page.expect_request(lambda r: f"{name}/analyze" in r.url) as analysis, \
            page.expect_response(lambda r: f"{name}/occlusion" in r.url) as occlusion:
        trigger()
    answer = occlusion.value.json()
    page.wait_for_function("t => document.querySelector('#occlusion-note').textContent.startsWith(t)",
                           arg=f"occlusion of “{answer['name']}”: p = {answer['probability']:.3f}")
    return analysis.value, answer


def switch(page, name):
    return analysed(page, lambda: page.select_option("#run", name), name)


def upload(page):
    return analysed(page, lambda: page.set_input_files("#upload", BOOT))


def top(classes, count=3):
    return [f"{c['name']} {100 * c['probability']:.1f} %" for c in classes[:count]]


def test_the_image_stays_when_the_run_changes_and_two_runs_compare_side_by_side(page, url):
    box = page.locator("#draw").bounding_box()                   # a drawing, kept pixel for pixel
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    with page.expect_request(lambda r: "/lenet5/analyze" in r.url) as drawn:
        page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.8 * box["height"], steps=8)
        page.mouse.up()
    drawing = json.loads(drawn.value.post_data)["pixels"]
    assert np.max(drawing) > 0.9
    request, _ = switch(page, "resnet20")
    assert json.loads(request.post_data)["pixels"] == drawing and page.inner_text("#source") == "Your drawing."

    with page.expect_request(lambda r: "/lenet5/predict" in r.url) as compared:
        page.select_option("#compare-run", "lenet5")
    page.wait_for_selector("#compare tr:nth-child(4)")
    assert json.loads(compared.value.post_data)["pixels"] == drawing
    rows = [row.split("\t") for row in page.inner_text("#compare").splitlines()]
    body = json.dumps({"pixels": drawing}).encode()
    mine, other = (api(url, f"/api/runs/{name}/predict", body, "application/json") for name in ("resnet20", "lenet5"))
    assert rows[0] == ["rank", "resnet20", "lenet5"] and page.inner_text("#topk").splitlines()[:3] == top(
        mine["classes"])
    assert [r[1] for r in rows[1:]] == top(mine["classes"]) and [r[2] for r in rows[1:]] == top(other["classes"])

    request, _ = switch(page, "dead")                              # still the drawing; still compared with lenet5
    assert json.loads(request.post_data)["pixels"] == drawing
    page.wait_for_function("document.querySelector('#compare tr th:nth-child(2)')?.textContent === 'dead (lenet5)'")

    with page.expect_request(lambda r: "/lenet5/predict" in r.url) as compared:    # a file, sent again as it is
        request, _ = upload(page)
    assert request.headers["content-type"] == compared.value.headers["content-type"] == "image/png"
    request, _ = switch(page, "lenet5")
    with open(BOOT, "rb") as f:
        boot = api(url, "/api/runs/lenet5/predict", f.read())
    assert request.headers["content-type"] == "image/png" and "ankle-boot.png" in page.inner_text("#source")
    assert page.inner_text("#topk").splitlines()[:3] == top(boot["classes"])
    assert page.locator("#compare-run option").all_inner_texts() == ["no other run", "resnet20", "dead (lenet5)"]
    assert page.locator("#compare").is_hidden()                    # lenet5 is now the run shown


def test_blocks_batch_norm_and_global_pooling_are_explained_with_their_own_numbers(page, runs):
    switch(page, "resnet20")

    def cell(layer, k, i, j, side):
        """Map k of a layer large, the cursor on its cell (i, j) of side × side: the arithmetic shown, checked."""
        page.click(f'.maps canvas[data-layer="{layer}"][data-map="{k}"]')
        page.wait_for_function("t => document.querySelector('#mac').textContent.startsWith(t)", arg=f"y[{k}, 0, 0]")
        page.hover("#detail-map", position={"x": (j + 0.5) * 220 / side, "y": (i + 0.5) * 220 / side})
        page.wait_for_function("t => document.querySelector('#mac').textContent.startsWith(t)",
                               arg=f"y[{k}, {i}, {j}]")
        mac = page.inner_text("#mac")
        ours, network = COMPUTED.search(mac).groups()
        assert abs(float(ours) - float(network)) < 2e-4, mac
        return mac, page.locator("#detail-input-box").is_hidden()

    mac, hidden = cell("layer2.0", 20, 4, 2, 14)                 # an appended zero map: nothing of the input
    assert hidden and "y[20, 4, 2] = ReLU(F(x) + S(x))" in mac and "S(x)[20] = 0" in mac
    assert "F = conv1 → bn1 → relu1 → conv2 → bn2, of all 16 maps of its input" in mac
    mac, hidden = cell("layer2.0", 3, 4, 2, 14)                  # option A: map 3 subsampled by 2
    assert not hidden and "S(x)[3, 4, 2] = x[3, 2·4, 2·2] = " in mac
    assert page.inner_text("#detail-input-note").endswith("map 3; the shortcut adds its cells (2i, 2j)")
    mac, hidden = cell("layer1.1", 5, 3, 15, 28)                 # identity: S(x) = x, read off the input's map
    sign, value = re.search(r"ReLU\(-?[\d.]+ ([+−]) ([\d.]+)\)", mac).groups()
    shortcut = re.search(r"S\(x\)\[5, 3, 15\] = x\[5, 3, 15\] = (-?[\d.]+): the identity", mac).group(1)
    assert not hidden and float(shortcut) == (1 if sign == "+" else -1) * float(value)

    mac, hidden = cell("bn1", 2, 10, 10, 28)                     # the running statistics of map 2, written out
    bn = TrainedModel.load(runs["resnet20"]).model.bn1
    numbers = re.search(r"\((-?[\d.]+) ([+−]) ([\d.]+)\) / √\(([\d.]+) \+ ([\de.-]+)\) · (-?[\d.]+)", mac).groups()
    mean = (-1 if numbers[1] == "+" else 1) * float(numbers[2])          # written "x − μ", or "x + |μ|"
    assert not hidden and "(x − μ) / √(σ² + ε) · γ + β" in mac
    assert mean == pytest.approx(bn.buffers["running_mean"][2], abs=1e-4)
    assert float(numbers[3]) == pytest.approx(bn.buffers["running_var"][2], abs=1e-4) and float(numbers[4]) == bn.eps
    assert float(numbers[5]) == pytest.approx(bn.params["weight"][2], abs=1e-4)

    strip = page.locator('.maps canvas[data-layer="avgpool"]')   # 64×1×1: one strip, a cell per map
    assert strip.count() == 1 and strip.get_attribute("data-strip") == "64"
    width = strip.evaluate("c => c.width")
    strip.click(position={"x": 2 + 10.5 * width / 64, "y": 8})   # 2: the border of a map
    page.wait_for_function("document.querySelector('#mac').textContent.includes('mean of map 10')")
    assert page.inner_text("#detail-title") == "layer avgpool (AdaptiveAvgPool2d), map 10 of 64: 1×1"
    ours, network = COMPUTED.search(page.inner_text("#mac")).groups()
    assert "y[10, 0, 0] = mean of map 10's 7×7 cells" in page.inner_text("#mac") and ours == network


def test_every_map_has_a_colour_bar_with_its_range_and_an_all_zero_one_says_so(page):
    request, occlusion = upload(page)
    analysis = again(request)

    def scale(selector):
        return {k: float(v) for k, v in page.eval_on_selector(selector, "e => ({...e.dataset})").items()}

    def near(expected):
        return pytest.approx(expected, rel=1e-4, abs=2e-6)
    most = analysis["explanation"]["saliency_max"]
    assert scale("#saliency-scale") == near({"low": 0, "high": most, "min": 0, "max": most}) and most > 0
    assert scale("#gradcam-scale")["high"] == near(np.max(analysis["explanation"]["gradcam"])) != 0
    change = np.array(occlusion["change"])                           # probability units, drops and rises
    assert scale("#occlusion-scale") == near({"low": -1, "high": 1, "min": change.min(), "max": change.max()})
    np.testing.assert_allclose(np.maximum(change, 0), occlusion["drop"])
    bars = page.locator(".layer .label .scale")                    # the maps', then the classifier's numbers'
    assert bars.count() == len(analysis["layers"]) + len(analysis["vectors"])
    for n, layer in enumerate(analysis["layers"] + analysis["vectors"]):
        values = layer["maps"] if "maps" in layer else layer["values"]
        assert bars.nth(n).evaluate("e => [+e.dataset.low, +e.dataset.high]") == near([np.min(values), np.max(values)])
    page.click('.maps canvas[data-layer="3"][data-map="4"]')
    page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('layer 3 (Conv2d), map 4')"
                           " && document.querySelector('#detail-map-scale').dataset.min !== undefined")
    maps = np.array(next(layer["maps"] for layer in analysis["layers"] if layer["name"] == "3"))
    assert scale("#detail-map-scale") == near({"low": maps.min(), "high": maps.max(), "min": maps[4].min(),
                                               "max": maps[4].max()})

    switch(page, "dead")
    for selector, word in (("#saliency-scale", "all 0: no pixel changes the score"),
                           ("#gradcam-scale", "all 0: nothing at layer"), ("#occlusion-scale", "all 0: no square")):
        assert page.inner_text(selector).startswith(word) and "zero" in page.get_attribute(selector, "class")
    page.click('.maps canvas[data-layer="0"][data-map="2"]')
    page.wait_for_function("document.querySelector('#detail-map-scale').textContent === 'map 2: all 0'")
    page.click('.maps canvas[data-layer="0"][data-map="1"]')
    page.wait_for_function("document.querySelector('#detail-map-scale').textContent.includes('this map:')")


def test_each_run_has_its_own_charts_with_ticks_and_its_learning_rate_and_every_mistake_is_paged(page, url, runs):
    page.wait_for_selector('#curves [data-run="resnet20"] svg[data-metric="lr"] polyline')

    def ticks(run, metric):
        return [float(t) for t in page.locator(f'#curves [data-run="{run}"] svg[data-metric="{metric}"] '
                                               f'text.tick.y').all_text_contents()]
    for run, folder in runs.items():
        metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        for metric, keys in (("test_loss", ("test_loss", "train_loss")), ("lr", ("lr",))):
            values = [m[k] for m in metrics for k in keys]
            found = ticks(run, metric)
            assert len(found) >= 3 and found[0] <= min(values) and found[-1] >= max(values), (run, metric, found)
    assert ticks("resnet20", "test_loss") != ticks("lenet5", "test_loss")          # a scale per run
    epochs = page.locator('#curves [data-run="resnet20"] svg[data-metric="lr"] text.tick.x').all_text_contents()
    assert epochs == ["0", "1", "2"]

    page.click("#load-confusion")
    page.wait_for_selector("#misclassified figure")
    confusion = api(url, "/api/runs/lenet5/confusion")
    wrong = confusion["count"] - np.trace(confusion["matrix"])
    assert len(confusion["misclassified"]) == wrong > 200
    assert page.inner_text("#mistake-pages").split("\n")[1] == f"1–60 of {wrong}"
    page.click("#mistake-pages button:text('next ›')")
    page.wait_for_function("t => document.querySelector('#mistake-pages').textContent.includes(t)",
                           arg=f"61–120 of {wrong}")
    assert page.locator("#misclassified figcaption").first.inner_text().startswith(
        f"#{confusion['misclassified'][60]['index']} ")
    assert page.locator("#misclassified figure").count() == 60
