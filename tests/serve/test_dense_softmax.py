"""The end of the forward pass on the page (issue #30, "Finish the forward pass"), in Debian's chromium driven by
Playwright: a Linear layer's unit as y_j = b_j + Σ_i w_ji·x_i with the real numbers (the largest terms listed, the
whole sum checked against what the network computed), the softmax from the logits to the prediction's probabilities,
and the window stepped cell by cell (arrow keys, and the step control) with its arithmetic following; on
``juanji serve`` of the LeNet-5 of conftest, and on the same run exported with ``juanji export --web`` and served as
static files."""
import json
import math
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from live_server import new_page, serving
from test_page import BOOT, pytestmark  # noqa: F401  (pytestmark: slow, needs chromium)

from juanji import checkpoint as ckpt
from juanji import models
from juanji.functional.activation import softmax
from juanji.nn import no_grad
from juanji.trained import TrainedModel
from juanji.viz.chain import layer_chain, run_chain

COMPUTED = re.compile(r"= (-?[\d.]+)\s+\(the network computed (-?[\d.]+)\)")
TOLERANCE = 2e-4           # our sum against the network's, both written with 4 decimals (as the convolution's test)
NUMBER = r"(-?[\d.]+|pad 0)"


@pytest.fixture(scope="module")
def juanji_numbers(tiny_run):
    """juanji's own numbers for the ankle boot, as the server prepares the file: every layer's output, the weights
    and the probabilities."""
    trained = TrainedModel.load(tiny_run)
    _, x = trained.prepare(BOOT)
    chain = layer_chain(trained.model)
    with no_grad():
        outputs = {name: y[0] for (name, _), y in zip(chain, run_chain(chain, x[None]))}
    return {"outputs": outputs, "layers": dict(chain), "probabilities": softmax(outputs["11"].astype(np.float64)),
            "classes": trained.classes}


def uploaded(browser, url):
    """A new page at url with the ankle boot uploaded and its analysis shown; JavaScript errors kept in .errors."""
    page = new_page(browser, timeout=60_000)
    page.goto(url)
    page.wait_for_selector("#topk li")
    page.set_input_files("#upload", str(BOOT))
    page.wait_for_function("document.querySelector('#source').textContent.includes('ankle-boot.png')")
    page.wait_for_selector('.maps canvas[data-layer="11"]')
    return page


@pytest.fixture
def page(browser, server):
    opened = uploaded(browser, server + "/")
    yield opened
    opened.context.close()
    assert opened.errors == []


def unit(page, layer, j):
    """Unit j of a layer of numbers, chosen as the keyboard does (its strip: arrows, Enter): the arithmetic shown."""
    page.locator(f'.maps canvas[data-layer="{layer}"]').focus()
    for _ in range(j):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    return shown(page, f"y[{j}] =")


def shown(page, start):
    page.wait_for_function("s => [...document.querySelectorAll('#mac p')].some((p) => p.textContent.startsWith(s))",
                           arg=start)
    return page.inner_text("#mac")


def check_linear(mac, numbers, layer, j):
    """The sum on the page is the network's value, which is juanji's; the terms listed are the 8 largest |w·x|."""
    ours, network = map(float, COMPUTED.search(mac).groups())
    assert abs(ours - network) < TOLERANCE and abs(network - numbers["outputs"][layer][j]) < 1e-4, mac
    position = list(numbers["outputs"]).index(layer)
    x = numbers["outputs"][list(numbers["outputs"])[position - 1]].reshape(-1)
    w = numbers["layers"][layer].params["weight"][j]
    rows = re.findall(r"^(\d+)\t(-?[\d.]+)\t(-?[\d.]+)\t(-?[\d.]+)$", mac, re.M)
    listed = [int(r[0]) for r in rows]
    size = np.abs(w * x)
    assert len(listed) == 8 and np.all(np.diff(size[listed]) <= 1e-5), (listed, size[listed])   # largest first
    assert size[listed].min() >= np.delete(size, listed).max() - 1e-5
    for i, xi, wi, product in rows:
        assert (float(xi), float(wi), float(product)) == pytest.approx((x[int(i)], w[int(i)], w[int(i)] * x[int(i)]),
                                                                       abs=1e-4)
    assert f"… and {x.size - 8} more terms, together " in mac


def test_a_linear_units_sum_is_the_layers_output_and_the_arrow_keys_step_the_units(page, juanji_numbers):
    strip = page.locator('.maps canvas[data-layer="7"]')          # 120 numbers: one strip, a cell per unit
    assert strip.get_attribute("data-strip") == "120" and strip.get_attribute("role") == "slider"
    mac = unit(page, "7", 5)
    assert page.inner_text("#detail-title").startswith("layer 7 (Linear)")
    assert "y[5] = b[5] + Σ_i w[5, i] · x[i]" in mac
    check_linear(mac, juanji_numbers, "7", 5)
    page.focus("#detail-map")                                      # the large strip: arrows step from unit to unit
    page.keyboard.press("ArrowRight")
    check_linear(shown(page, "y[6] ="), juanji_numbers, "7", 6)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    check_linear(shown(page, "y[4] ="), juanji_numbers, "7", 4)
    mac = unit(page, "11", 9)                                      # the logits: 84 inputs
    check_linear(mac, juanji_numbers, "11", 9)
    mac = unit(page, "8", 3)                                       # the ReLU after the first Linear, unit by unit
    ours, network = map(float, COMPUTED.search(mac).groups())
    assert mac.startswith("y[3] = max(0, x[3])") and ours == network == pytest.approx(
        max(0, juanji_numbers["outputs"]["7"][3]), abs=1e-4)


def softmax_rows(page):
    """The softmax panel's rows: (class, z, z − max z, e^(z − max z), p, the prediction's p)."""
    rows = page.locator("#softmax tr").all_inner_texts()[1:]
    return [(name, *map(float, numbers)) for name, *numbers in (row.split("\t") for row in rows)]


def check_softmax(page, numbers):
    page.wait_for_selector("#softmax tr:nth-child(11)")
    rows = softmax_rows(page)
    logits, probabilities = numbers["outputs"]["11"], numbers["probabilities"]
    order = np.argsort(-probabilities, kind="stable")
    assert [row[0] for row in rows] == [numbers["classes"][c] for c in order]    # every class, most probable first
    top = logits.max()
    for (name, z, shifted, e, p, predicted), c in zip(rows, order):
        assert z == pytest.approx(logits[c], abs=1e-4) and shifted == pytest.approx(logits[c] - top, abs=1e-4)
        assert e == pytest.approx(math.exp(logits[c] - top), abs=1e-4)
        assert p == pytest.approx(probabilities[c], abs=1e-4) and predicted == pytest.approx(p, abs=1e-4)
    text = page.inner_text("#softmax")
    total = np.exp(logits - top).sum()
    assert re.search(r"Σ e\^\(z − max z\) = ([\d.]+)", text).group(1) == f"{total:.4f}"
    assert "overflow" in text and "NaN" in text                        # why the largest score is subtracted
    panel = [item.rsplit(" ", 2) for item in page.locator("#topk li").all_inner_texts()]   # the prediction panel
    assert [name for name, _, _ in panel] == [row[0] for row in rows[:5]]
    for (_, percent, _), c in zip(panel, order):
        assert abs(float(percent) - 100 * probabilities[c]) <= 0.05 + 1e-9


def test_the_softmax_panel_turns_the_logits_into_the_predictions_probabilities(page, juanji_numbers):
    check_softmax(page, juanji_numbers)


SNAPSHOT = """() => {
  const marked = (id) => {                                // the box of the orange mark's pixels: gray has red = blue
    const canvas = document.getElementById(id);
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let [left, top, right, bottom] = [Infinity, Infinity, -1, -1];
    for (let y = 0; y < canvas.height; y++) for (let x = 0; x < canvas.width; x++) {
      const n = 4 * (y * canvas.width + x);
      if (data[n] - data[n + 2] > 60) {
        left = Math.min(left, x); right = Math.max(right, x); top = Math.min(top, y); bottom = Math.max(bottom, y);
      }
    }
    return [left, top, right, bottom, canvas.width, canvas.height];
  };
  const table = document.querySelector('#mac table');
  return {mac: document.querySelector('#mac').innerText, input: marked('detail-input'), map: marked('detail-map'),
          window: [...table.rows].map((row) => [...row.cells].map((cell) => cell.textContent))};
}"""


def cells(box, side):
    """The first and last rows and columns of the cells outlined on a canvas showing a side × side plane."""
    left, top, right, bottom, width, height = box
    sx, sy = width / side, height / side
    return (round((top + 1) / sy), round((bottom - 1) / sy) - 1), (round((left + 1) / sx), round((right - 1) / sx) - 1)


def check_window(page, numbers, i, j):
    """Map 2 of layer 3 at cell (i, j), all read at once (the step control may move on): the window outlined on map 0
    of its input, its numbers in the table, the cell outlined on the map, and the sum the network's."""
    shown(page, f"y[2, {i}, {j}] = b")
    seen = page.evaluate(SNAPSHOT)
    i, j = map(int, re.search(r"^y\[2, (\d+), (\d+)\] = b", seen["mac"], re.M).groups())   # (i, j) or a step on
    assert cells(seen["input"], 14) == ((i, i + 4), (j, j + 4)) and cells(seen["map"], 10) == ((i, i), (j, j))
    np.testing.assert_allclose([[float(v) for v in row] for row in seen["window"]],
                               numbers["outputs"]["2"][0, i:i + 5, j:j + 5], atol=1e-4)
    ours, network = map(float, COMPUTED.search(seen["mac"]).groups())
    assert abs(ours - network) < TOLERANCE and abs(network - numbers["outputs"]["3"][2, i, j]) < 1e-4
    return i, j


STEPS = """() => {           // when each cell is drawn: [time in ms, "y[k, i, j]"]
  window.drawn = [];
  new MutationObserver(() => window.drawn.push(
    [performance.now(), document.querySelector('#mac').textContent.match(/y\\[2, \\d+, \\d+\\]/)?.[0]])
  ).observe(document.querySelector('#mac'), {childList: true});
}"""


def test_the_arrow_keys_and_the_step_control_move_the_window_and_the_numbers_follow(page, juanji_numbers):
    page.click('.maps canvas[data-layer="3"][data-map="2"]')
    assert check_window(page, juanji_numbers, 0, 0) == (0, 0)
    page.focus("#detail-map")
    for key in ("ArrowRight", "ArrowDown", "ArrowRight"):
        page.keyboard.press(key)
    assert check_window(page, juanji_numbers, 1, 2) == (1, 2)

    step = page.locator("#detail-step")                       # play: a step at a readable pace, the window along
    assert step.get_attribute("aria-pressed") == "false"
    page.evaluate(STEPS)
    step.focus()
    page.keyboard.press("Enter")
    assert step.get_attribute("aria-pressed") == "true"
    check_window(page, juanji_numbers, 1, 3)
    check_window(page, juanji_numbers, 1, 5)
    page.keyboard.press("Space")                              # pause: the cell stays
    assert step.get_attribute("aria-pressed") == "false"
    drawn = page.evaluate("window.drawn")
    assert [cell for _, cell in drawn[:3]] == ["y[2, 1, 3]", "y[2, 1, 4]", "y[2, 1, 5]"]
    assert all(later - before > 400 for (before, _), (later, _) in zip(drawn, drawn[1:]))   # 0.8 s a step
    page.wait_for_timeout(1200)
    assert len(page.evaluate("window.drawn")) == len(drawn)

    page.focus("#detail-map")                                  # the end of a row, then on to the next row
    page.keyboard.press("ArrowDown")
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    i, j = check_window(page, juanji_numbers, 2, 9)
    step.click()
    assert check_window(page, juanji_numbers, i + 1, 0)[0] == i + 1
    step.click()
    assert step.get_attribute("aria-pressed") == "false"


def get(url):
    """(status, JSON answer) of a GET, an error status included."""
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_linear_route_sends_a_linear_layers_weights_and_refuses_other_layers_and_huge_ones(server, tiny_run,
                                                                                                 tmp_path):
    status, answer = get(server + "/api/runs/lenet5/linear/7")
    layer = TrainedModel.load(tiny_run).model[7]
    assert status == 200 and answer["name"] == "7" and np.shape(answer["weight"]) == (120, 400)
    np.testing.assert_allclose(answer["weight"], layer.params["weight"], atol=5e-7, rtol=0)
    np.testing.assert_allclose(answer["bias"], layer.params["bias"], atol=5e-7, rtol=0)
    for name in ("3", "nope"):
        assert get(server + f"/api/runs/lenet5/linear/{name}") == (404, {
            "error": f"no Linear layer named '{name}'; the Linear layers are 7, 9, 11"})
    ckpt.save(tmp_path / "big.npz", models.create("lenet5", input_size=200))     # its first Linear: 36,864 × 120
    with serving(tmp_path / "big.npz") as url:
        assert get(url + "/api/runs/big/linear/7") == (400, {
            "error": "layer 7 has 4,423,680 weights, more than the 4,194,304 the page is sent: its units' sums are "
                     "not shown"})


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """The run exported by the command line, served by ``python -m http.server`` on 127.0.0.1: its URL."""
    folder = tmp_path_factory.mktemp("dense-web") / "page"
    result = subprocess.run([sys.executable, "-m", "juanji.cli", "export", str(tiny_run), "--web", str(folder)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d",
                               str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.kill()
        server.wait(timeout=20)


def test_the_exported_page_shows_the_same_sums_and_softmax_in_the_browser_alone(browser, exported, juanji_numbers):
    page = uploaded(browser, exported)                        # prepared and run by onnxruntime-web
    check_softmax(page, juanji_numbers)
    check_linear(unit(page, "9", 7), juanji_numbers, "9", 7)
    page.focus("#detail-map")
    page.keyboard.press("ArrowRight")
    check_linear(shown(page, "y[8] ="), juanji_numbers, "9", 8)
    assert page.errors == []
    page.context.close()
