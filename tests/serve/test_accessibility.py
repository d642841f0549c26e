"""The page at a phone's width and a laptop's, by keyboard and by screen reader (issue #30, item 7), in Debian's
chromium driven by Playwright against ``juanji serve`` of a LeNet-5 and a ResNet-20: never wider than the window
(a wide strip scrolls in its own box), the upload and every clickable map and cell reached and worked with the
keyboard behind a visible focus ring, the prediction announced, and nothing serious or critical for axe-core."""
import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from live_server import CHROMIUM, new_page, serving
from test_page import BOOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason="apt-get install chromium (see the Makefile)")]

# axe-core, the accessibility checker, is a test asset only (juanji never fetches it): this release's tarball from
# the npm registry, checked against the sha512 the registry publishes for it (its dist.integrity).
AXE_VERSION = "4.14.1"
AXE_TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
AXE_INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
SERIOUS = ("serious", "critical")
PHONE, LAPTOP = 375, 1280                  # an iPhone's CSS width, and a small laptop's
RUNS = ("lenet5", "resnet20")


@pytest.fixture(scope="module")
def url(tiny_run, resnet20_run):
    with serving(tiny_run, resnet20_run) as address:
        yield address


@pytest.fixture(scope="module")
def axe():
    """axe.min.js of AXE_VERSION: the tarball is downloaded once into $XDG_CACHE_HOME (else ~/.cache) and checked
    against AXE_INTEGRITY every time it is read; axe.min.js alone is taken out of it."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "juanji-tests"
    tarball = cache / f"axe-core-{AXE_VERSION}.tgz"
    if not tarball.exists():
        try:
            with urllib.request.urlopen(AXE_TARBALL, timeout=60) as answer:
                data = answer.read()
        except OSError as error:
            # `make test` downloads its packages too: a machine that cannot reach the registry fails here, loudly
            pytest.fail(f"axe-core {AXE_VERSION} is not in {cache} and the npm registry cannot be reached: {error}")
        cache.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, tarball)
    data = tarball.read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != AXE_INTEGRITY:
        tarball.unlink()
        pytest.fail(f"{tarball} is not axe-core {AXE_VERSION} (its {digest} is not {AXE_INTEGRITY}); removed")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.extractfile("package/axe.min.js").read().decode("utf-8")


def opened(browser, url, width, path="/", **context):
    """A new page of `width` CSS pixels at url + path, its blank image analysed (occlusion included); every
    JavaScript error it meets is kept in page.errors."""
    page = new_page(browser, width, 900, 90_000, **context)   # 90 s: a ResNet's occlusion on a busy 2-core machine
    shown(page, lambda: page.goto(url + path))
    return page


def shown(page, trigger, run=""):
    """trigger(), then wait until the page shows the analysis (of `run`, if given) and the occlusion after it
    (its p written as both languages write it)."""
    with page.expect_response(lambda r: f"{run}/occlusion" in r.url) as occlusion:
        trigger()
    probability = f"p = {occlusion.value.json()['probability']:.3f}"
    page.wait_for_function("p => document.querySelector('#occlusion-note').textContent.includes(p)", arg=probability)


def everything(page, confusion=True):
    """Open what the page can show of the run shown: a map large (with its arithmetic), its widest kernels and
    (where the server may read the run's test set: not the ResNet-20's folder, which no --data names) the confusion
    matrix with its mistakes."""
    page.locator(".maps canvas").first.click()
    page.wait_for_function("document.querySelector('#mac').textContent.includes('y[0, 0, 0]')")
    widest = page.locator("#kernel-layer option").last.get_attribute("value")
    page.select_option("#kernel-layer", widest)
    page.wait_for_selector(f'#kernel-grid canvas[aria-label*="{widest}"]')
    if confusion:
        page.click("#load-confusion")
        page.wait_for_selector("#confusion td")


def axe_check(page, axe):
    """axe-core's serious and critical findings on the page as it is, one line each."""
    if not page.evaluate("'axe' in window"):
        page.add_script_tag(content=axe)
    found = page.evaluate("async () => (await axe.run(document)).violations.map((v) => ({id: v.id, impact: v.impact,"
                          " help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))")
    return [f"{v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in found if v["impact"] in SERIOUS]


def assert_ring(page):
    """The element with the focus shows it: an outline of 2 px or more, on the label of the file input (hidden
    inside it), on anything else itself."""
    style, width, html = page.evaluate("""() => {
      const focused = document.activeElement;
      const style = getComputedStyle(focused.type === 'file' ? focused.closest('label') : focused);
      return [style.outlineStyle, parseFloat(style.outlineWidth), focused.outerHTML.slice(0, 120)];
    }""")
    assert style != "none" and width >= 2, (html, style, width)


def tab_to(page, id, presses=15):
    """Press Tab until the element of this id has the focus: the ids focused on the way."""
    passed = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        passed.append(page.evaluate("document.activeElement.id"))
        if passed[-1] == id:
            return passed
    raise AssertionError(f"#{id} is not reached with Tab: {passed}")


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
def test_each_run_fits_the_window_names_its_pictures_and_axe_core_finds_nothing_serious(browser, url, axe, width):
    page = opened(browser, url, width)
    for run in RUNS:
        if run != RUNS[0]:
            shown(page, lambda: page.select_option("#run", run), run)
        everything(page, confusion=run == "lenet5")
        measured = page.evaluate("""() => {
          const grid = document.querySelector('#kernel-grid');
          return {page: document.documentElement.scrollWidth, window: document.documentElement.clientWidth,
                  detail: [...document.querySelectorAll('#detail canvas')].filter((c) => c.offsetParent)
                            .map((c) => c.getBoundingClientRect().right),
                  grid: grid.getBoundingClientRect().right, gridScrolls: grid.scrollWidth > grid.clientWidth};
        }""")
        assert measured["page"] <= measured["window"], (run, measured)        # no page-wide horizontal scroll
        assert len(measured["detail"]) >= 3 and max(measured["detail"]) <= measured["window"], (run, measured)
        assert measured["grid"] <= measured["window"], (run, measured)
        if run == "resnet20":                          # 64 kernels × 64 channels: wider than any window
            assert measured["gridScrolls"], measured
        unnamed = page.evaluate("""() => [...document.querySelectorAll('canvas, img, svg')]
          .filter((e) => e.getClientRects().length && !e.closest('[aria-hidden="true"]'))
          .filter((e) => !(e.getAttribute('aria-label') || e.getAttribute('alt')
                           || document.getElementById(e.getAttribute('aria-labelledby'))?.textContent.trim()))
          .map((e) => e.outerHTML.slice(0, 80))""")
        assert unnamed == [], (run, unnamed)
        found = axe_check(page, axe)
        assert found == [], f"{run} at {width} px:\n" + "\n".join(found)
    assert page.errors == []
    page.context.close()


def test_upload_maps_cells_and_mistakes_work_by_keyboard_behind_a_visible_focus_ring(browser, url):
    page = opened(browser, url, LAPTOP)
    passed = tab_to(page, "draw")                    # the drawing canvas: arrows draw, Shift+arrows move the pen
    assert_ring(page)
    for key in ["Shift+ArrowLeft"] * 3 + ["ArrowDown"] * 6:
        page.keyboard.press(key)
    with page.expect_request(lambda r: "/analyze" in r.url) as drawn:
        page.keyboard.press("Enter")                   # the stroke ends: the drawing analysed
    pixels = np.array(json.loads(drawn.value.post_data)["pixels"])
    columns = np.flatnonzero(pixels[0].max(axis=0) > 0.9)
    assert pixels.max() > 0.9 and columns.max() < 14 and (pixels[0] > 0.9).sum() >= 6, columns

    with page.expect_file_chooser() as chooser:      # (listening before the key: Chromium's dialog is caught)
        passed += tab_to(page, "upload")             # the upload: reached, its label ringed, opened with Space
        assert passed.index("draw") < passed.index("clear") < passed.index("upload")
        assert_ring(page)
        page.keyboard.press("Space")
    shown(page, lambda: chooser.value.set_files(BOOT))
    top = page.get_attribute("#topk", "data-top")
    assert top in page.inner_text('[aria-live="polite"]')           # the prediction, announced

    maps = page.locator('.maps canvas[data-layer="3"]')              # a layer's maps: one tab stop, arrows, Enter
    assert maps.evaluate_all("cs => cs.map((c) => c.tabIndex)") == [0] + [-1] * 15
    maps.first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert_ring(page)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('layer 3 (Conv2d), map 2')")
    assert page.evaluate("document.activeElement.dataset.map") == "2"
    page.wait_for_function("document.querySelector('#mac').textContent.includes('y[2, 0, 0] = b')")
    page.focus("#detail-map")                          # the large map: arrows move the cell whose sum is shown
    for key in ["ArrowDown"] * 4 + ["ArrowRight"] * 5:
        page.keyboard.press(key)
    page.wait_for_function("document.querySelector('#mac').textContent.includes('y[2, 4, 5] = b')")
    assert_ring(page)

    page.focus("#load-confusion")                      # the confusion matrix: a grid of cells, arrows and Enter
    page.keyboard.press("Enter")
    page.wait_for_selector("#confusion td")
    assert page.get_attribute("#confusion", "role") == "grid"
    assert set(page.locator("#confusion th").evaluate_all("hs => hs.map((h) => h.scope)")) == {"col", "row"}
    page.locator("#confusion td").first.focus()
    page.keyboard.press("ArrowRight")
    assert_ring(page)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#wrong-filter').textContent.includes('taken for')")
    page.locator("#confusion td").first.focus()
    page.keyboard.press("Enter")                       # the diagonal: all mistakes again
    page.wait_for_selector("#misclassified figure")
    figures = page.locator("#misclassified figure")
    figures.first.focus()
    page.keyboard.press("ArrowRight")
    assert_ring(page)
    second = figures.nth(1).inner_text().split(" ")[0]
    shown(page, lambda: page.keyboard.press("Enter"))
    assert page.inner_text("#source").startswith(f"Test image {second} ")

    shown(page, lambda: page.select_option("#run", "resnet20"), "resnet20")
    strip = page.locator('.maps canvas[data-layer="avgpool"]')        # 64 maps of 1×1 in one strip: arrows, Enter
    strip.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('layer avgpool "
                           "(AdaptiveAvgPool2d), map 10 of 64')")
    assert page.errors == []
    page.context.close()
