"""The page in a real browser: Debian's chromium driven by Playwright (never a downloaded browser) against
``juanji serve`` running as a real process on a really trained run."""
import json
import os
import re
import shutil
import urllib.request
from pathlib import Path

import pytest
from live_server import CHROMIUM, new_page, serving

BOOT = "docs/images/ankle-boot.png"
STATIC = Path(__file__).resolve().parents[2] / "juanji" / "serve" / "static"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason="apt-get install chromium (see the Makefile)")]


def server_pixels(url, path):
    """The pixels the server prepares from an image file (what /predict answers with)."""
    with open(path, "rb") as f:
        request = urllib.request.Request(url + "/api/runs/lenet5/predict", data=f.read(),
                                         headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)["pixels"]


def screenshot_path(tmp_path):
    """Where the screenshot goes: $JUANJI_TEST_ARTIFACTS (CI keeps it) or the test's temporary folder."""
    folder = os.environ.get("JUANJI_TEST_ARTIFACTS") or tmp_path
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, "serve.png")


def test_upload_draw_look_inside_and_no_javascript_errors(browser, tiny_run, tmp_path):
    growing = tmp_path / "lenet5"                      # a second run whose metrics.jsonl grows while served
    shutil.copytree(tiny_run, growing)
    with serving(tiny_run, growing) as url:
        page = new_page(browser)
        scripts = {}                                                        # the modules the page loads
        page.on("response", lambda r: scripts.update({r.url.split("/")[-1]: (r.status, r.headers["content-type"])})
                if "/static/" in r.url and r.url.endswith(".js") else None)
        page.goto(url + "/")
        page.wait_for_selector("#topk li")                                   # the blank canvas, predicted
        assert page.locator("#run option").all_inner_texts() == ["lenet5", "lenet5-2"]
        assert page.eval_on_selector("script", "s => s.type + ' ' + s.getAttribute('src')") == "module /static/app.js"
        assert set(scripts) == {path.name for path in STATIC.glob("*.js")}  # every module file, none missing
        assert all(status == 200 and "javascript" in kind for status, kind in scripts.values()), scripts
        assert page.evaluate("['state', 'image', 'chosen', 'api', 'paint', 'showInside'].filter((n) => n in window)") == []  # no globals

        posted = []                                                         # what an upload costs
        page.on("request", lambda r: posted.append(r.url.split("/")[-1].split("?")[0]) if r.method == "POST" else None)
        page.set_input_files("#upload", BOOT)                                # upload → prediction
        page.wait_for_function("document.querySelector('#source').textContent.includes('ankle-boot.png')")
        page.wait_for_selector("#topk li")
        uploaded = page.inner_text("#topk")
        assert re.search(r"\d+\.\d %", uploaded) and len(page.locator("#topk li").all()) == 5
        page.wait_for_function("document.querySelector('#occlusion-note').textContent.startsWith('occlusion of')")
        assert posted == ["analyze", "occlusion"]          # one analysis (the file itself), then the occlusion
        with page.expect_request(lambda r: "/analyze" in r.url) as asked:  # another class: the same pixels again,
            page.select_option("#explain-class", "0")                      # the server's, not the canvas's
        assert json.loads(asked.value.post_data)["pixels"] == server_pixels(url, BOOT)
        first = page.locator("#explain-class option").nth(1).inner_text().split(" ", 1)[1]
        page.wait_for_function("c => document.querySelector('#occlusion-note').textContent.startsWith(`occlusion of “${c}”`)",
                               arg=first)
        with page.expect_response(lambda r: "/analyze" in r.url):
            page.select_option("#explain-class", "")                       # back to the predicted class

        page.click("#clear")                                                # draw strokes → a new prediction
        box = page.locator("#draw").bounding_box()
        page.wait_for_function("t => document.querySelector('#topk').innerText !== t", arg=uploaded)
        blank = page.inner_text("#topk")
        page.wait_for_timeout(300)
        del posted[:]
        for x0, y0, x1, y1 in [(0.45, 0.1, 0.45, 0.9), (0.55, 0.1, 0.55, 0.9), (0.35, 0.12, 0.65, 0.12)]:
            page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=12)
            page.mouse.up()
        page.wait_for_function("t => document.querySelector('#topk').innerText !== t", arg=blank)
        page.wait_for_timeout(500)
        assert page.inner_text("#topk") not in (blank, uploaded)
        drawing = [p for p in posted if p != "occlusion"]   # /predict while drawing, /analyze after the last stroke
        assert drawing.count("analyze") == 1 and "predict" in drawing and set(drawing) == {"predict", "analyze"}

        page.click('.maps canvas[data-layer="3"][data-map="2"]')           # a layer's map, large, with its MAC
        page.hover("#detail-map", position={"x": 125, "y": 100})         # cell (4, 5) of the 220-pixel view
        page.wait_for_function("document.querySelector('#mac').textContent.includes('the network computed')")
        mac = page.inner_text("#mac")
        ours, network = re.search(r"= (-?[\d.]+)\s+\(the network computed (-?[\d.]+)\)", mac).groups()
        assert abs(float(ours) - float(network)) < 2e-4 and "y[2, 4, 5]" in mac
        page.wait_for_function("document.querySelector('#detail-deconv-note').textContent.includes('strongest')")

        page.click('.maps canvas[data-layer="0"][data-map="0"]')           # the corner of a padded convolution
        page.hover("#detail-map", position={"x": 3, "y": 3})
        page.wait_for_function("document.querySelector('#mac').textContent.includes('y[0, 0, 0] =')")
        mac = page.inner_text("#mac")
        ours, network = re.search(r"= (-?[\d.]+)\s+\(the network computed (-?[\d.]+)\)", mac).groups()
        assert abs(float(ours) - float(network)) < 2e-4 and mac.count("pad 0") == 25 - 9   # 3×3 of 5×5 inside
        page.click('.maps canvas[data-layer="2"][data-map="1"]')           # max pooling: stride 2, 14×14
        page.hover("#detail-map", position={"x": 71, "y": 55})           # cell (3, 4)
        page.wait_for_function("document.querySelector('#mac').textContent.includes('y[1, 3, 4] = max')")
        ours, network = re.search(r"max of the window = (-?[\d.]+); the network: (-?[\d.]+)",
                                  page.inner_text("#mac")).groups()
        assert ours == network

        page.wait_for_function("document.querySelector('#occlusion-note').textContent.startsWith('occlusion of')")
        page.select_option("#gradcam-layer", "3")                          # Grad-CAM of another layer
        page.wait_for_function("document.querySelector('#gradcam-note').textContent.includes('at layer 3:')")

        page.click("#load-confusion")                                       # mistakes link to the inside view
        page.wait_for_selector("#misclassified figure")
        page.locator("#misclassified figure").first.click()
        page.wait_for_function("document.querySelector('#source').textContent.startsWith('Test image #')")
        page.wait_for_selector("#legend span")
        assert "lenet5-2 (1 epochs" in page.inner_text("#legend")
        with open(growing / "metrics.jsonl") as f:            # the next epoch, as juanji train appends it
            line = json.loads(f.readline())
        with open(growing / "metrics.jsonl", "a") as f:
            f.write(json.dumps({**line, "epoch": 2, "test_accuracy": 0.625}) + "\n")
        page.wait_for_function("document.querySelector('#legend').textContent.includes('lenet5-2 (2 epochs')",
                               timeout=10000)
        assert "test accuracy 62.50 %" in page.inner_text("#legend")
        page.wait_for_timeout(300)
        page.screenshot(path=screenshot_path(tmp_path), full_page=True)
        page.context.close()
    assert page.errors == []
