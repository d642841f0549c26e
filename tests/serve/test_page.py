"""The page in a real browser: Debian's chromium driven by Playwright (never a downloaded browser) against
``juanji serve`` running as a real process on a really trained run."""
import json
import os
import re
import shutil

import pytest
from live_server import serving

CHROMIUM = "/usr/bin/chromium"
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason="apt-get install chromium (see the Makefile)")]


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def screenshot_path(tmp_path):
    """Where the screenshot goes: $JUANJI_TEST_ARTIFACTS (CI keeps it) or the test's temporary folder."""
    folder = os.environ.get("JUANJI_TEST_ARTIFACTS") or tmp_path
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, "serve.png")


def test_upload_draw_look_inside_and_no_javascript_errors(tiny_run, tmp_path):
    growing = tmp_path / "lenet5"                      # a second run whose metrics.jsonl grows while served
    shutil.copytree(tiny_run, growing)
    with serving(tiny_run, growing) as url, sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        page.wait_for_selector("#topk li")                                   # the blank canvas, predicted
        assert page.locator("#run option").all_inner_texts() == ["lenet5", "lenet5-2"]

        posted = []                                                         # what an upload costs
        page.on("request", lambda r: posted.append(r.url.split("/")[-1].split("?")[0]) if r.method == "POST" else None)
        page.set_input_files("#upload", "docs/images/ankle-boot.png")        # upload → prediction
        page.wait_for_function("document.querySelector('#source').textContent.includes('ankle-boot.png')")
        page.wait_for_selector("#topk li")
        uploaded = page.inner_text("#topk")
        assert re.search(r"\d+\.\d %", uploaded) and len(page.locator("#topk li").all()) == 5
        page.wait_for_function("document.querySelector('#occlusion-note').textContent.startsWith('occlusion of')")
        assert posted == ["analyze", "occlusion"]          # one analysis (the file itself), then the occlusion

        page.click("#clear")                                                # draw strokes → a new prediction
        box = page.locator("#draw").bounding_box()
        page.wait_for_function("t => document.querySelector('#topk').innerText !== t", arg=uploaded)
        blank = page.inner_text("#topk")
        for x0, y0, x1, y1 in [(0.45, 0.1, 0.45, 0.9), (0.55, 0.1, 0.55, 0.9), (0.35, 0.12, 0.65, 0.12)]:
            page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=12)
            page.mouse.up()
        page.wait_for_function("t => document.querySelector('#topk').innerText !== t", arg=blank)
        page.wait_for_timeout(500)
        assert page.inner_text("#topk") not in (blank, uploaded)

        page.click('.maps canvas[data-layer="3"][data-map="2"]')           # a layer's map, large, with its MAC
        page.hover("#detail-map", position={"x": 125, "y": 100})         # cell (4, 5) of the 220-pixel view
        page.wait_for_function("document.querySelector('#mac').textContent.includes('the network computed')")
        mac = page.inner_text("#mac")
        ours, network = re.search(r"= (-?[\d.]+)\s+\(the network computed (-?[\d.]+)\)", mac).groups()
        assert abs(float(ours) - float(network)) < 2e-4 and "y[2, 4, 5]" in mac
        page.wait_for_function("document.querySelector('#detail-deconv-note').textContent.includes('strongest')")

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
        browser.close()
    assert errors == []
