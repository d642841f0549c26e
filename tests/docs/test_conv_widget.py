"""The convolution, padding-stride and pooling pages' widgets (docs/javascripts/conv-widget.js): each holds the
arrays its page's juanji code makes, and in Debian's chromium, on the built site, shows at the page's settings
the output that code prints, computes every other setting of its controls as juanji does, writes out the
multiply-accumulate of the selected output, steps with its buttons and the arrow keys, says a broken data
attribute in one line, and labels its controls in the glossary's words on the Chinese pages."""
from __future__ import annotations

import doctest
import itertools
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from juanji import random as jrandom
from juanji.functional import avg_pool2d, conv2d, max_pool2d
from test_docs import DOCS, FLAGS, built_folder, examples, page_id
from test_site import _chromium

# Per page: the expressions, in its code's namespace, of the arrays its widget holds, and of what the code
# prints for the widget's settings (none changed, or those named).
WIDGETS = {
    "concepts/convolution": {"x": "x", "w": "w", "shown": {(): "y[0]"}},
    "concepts/padding-stride": {"x": "image", "w": "same.params['weight']", "shown": {(): "same(image)[0]"}},
    "concepts/pooling": {"x": "x", "shown": {(): "max_pool(x)[0]", (("pool", "avg"),): "avg_pool(x)[0]"}},
}
PAGES = [(name, DOCS / f"{name}{suffix}") for name in WIDGETS for suffix in (".md", ".zh.md")]
# The settings checked against juanji: the task's grid.
CONV_GRID = {"stride": (1, 2, 3), "padding": (0, 1, 2), "dilation": (1, 2), "channels": (1, 2, 3)}
POOL_GRID = {"window": (1, 2, 3), "stride": (1, 2, 3), "pool": ("max", "avg")}
CHINESE = {"concepts/convolution": ["步幅", "填充", "空洞率", "输入通道数", "卷积核"],
           "concepts/padding-stride": ["步幅", "填充", "空洞率"], "concepts/pooling": ["窗口", "步幅", "池化", "最大"]}
MINUS = "\u2212"


class _Widgets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and "conv-widget" in attrs.get("class", "").split():
            self.found.append({k.removeprefix("data-"): v for k, v in attrs.items() if k.startswith("data-")})


def widget_data(page: Path) -> dict:
    parser = _Widgets()
    parser.feed(page.read_text(encoding="utf-8"))
    assert len(parser.found) == 1, f"{page_id(page)}: {len(parser.found)} conv-widgets, not 1"
    return parser.found[0]


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory):
    """The namespace each page's code leaves, its examples run as tests/docs/test_docs.py runs them."""
    found, here = {}, Path.cwd()
    print_options, random_state = np.get_printoptions(), jrandom.get_state()
    try:
        for name in WIDGETS:
            os.chdir(tmp_path_factory.mktemp(name.replace("/", "-")))
            test = doctest.DocTest(examples(DOCS / f"{name}.md"), {"__name__": "__main__"}, name, None, 0, None)
            runner = doctest.DocTestRunner(optionflags=FLAGS)
            runner.run(test, out=lambda _: None, clear_globs=False)
            assert not runner.failures, f"{name}: the page's examples fail (tests/docs/test_docs.py says how)"
            found[name] = test.globs
    finally:
        os.chdir(here)
        np.set_printoptions(**print_options)
        jrandom.set_state(random_state)
    return found


def value(namespaces, name: str, expression: str) -> np.ndarray:
    return np.asarray(eval(expression, namespaces[name]), dtype=np.float64)


@pytest.mark.parametrize("name, page", PAGES, ids=[page_id(page) for _, page in PAGES])
def test_each_widget_holds_the_arrays_its_page_makes(name, page, namespaces):
    data = widget_data(page)
    for key in ("x", "w"):
        if key in WIDGETS[name]:
            np.testing.assert_array_equal(np.array(json.loads(data[key]), dtype=np.float64),
                                          value(namespaces, name, WIDGETS[name][key]),
                                          err_msg=f"{page_id(page)}: data-{key}")


def number(v: float) -> str:
    """A number as the widget writes it: at most 3 decimals, a minus sign."""
    text = f"{round(abs(float(v)), 3):g}"
    return MINUS + text if round(float(v), 3) < 0 else text


def factor(v: float) -> str:
    return f"({number(v)})" if round(float(v), 3) < 0 else number(v)


def multiply_accumulate(x, w, k, i, j, stride=1, padding=0, dilation=1) -> tuple[list[str], str]:
    """The widget's words for output (k, i, j) of the convolution of one image x (C, H, W) with w: per input
    channel, its products by name, then by value, and its sum; then the channels' sums added up."""
    lines, sums = [], []
    for c in range(x.shape[0]):
        taps = [(r, q, i * stride + r * dilation - padding, j * stride + q * dilation - padding)
                for r in range(w.shape[2]) for q in range(w.shape[3])]
        inside = [0 <= row < x.shape[1] and 0 <= col < x.shape[2] for _, _, row, col in taps]
        pixels = [x[c, row, col] if ok else 0.0 for (_, _, row, col), ok in zip(taps, inside)]
        names = " + ".join(f"{f'x[{c},{row},{col}]' if ok else '0'}·w[{k},{c},{r},{q}]"
                           for (r, q, row, col), ok in zip(taps, inside))
        products = " + ".join(f"{factor(p)}·{factor(w[k, c, r, q])}" for (r, q, _, _), p in zip(taps, pixels))
        sums.append(sum(p * w[k, c, r, q] for (r, q, _, _), p in zip(taps, pixels)))
        lines.append(f"{names}\n= {products} = {number(sums[-1])}")
    total = f"{' + '.join(map(number, sums))} = " if len(sums) > 1 else ""
    return lines, f"y[{k},{i},{j}] = {total}{number(sum(sums))}"


def juanji_output(x, w, settings: dict) -> np.ndarray:
    """What juanji computes for one image x (C, H, W) at the widget's settings: (maps, H', W')."""
    if "pool" in settings:
        pool = max_pool2d if settings["pool"] == "max" else avg_pool2d
        return pool(x[None], settings["window"], settings["stride"])[0][0]
    c = settings["channels"]
    return conv2d(x[None, :c], w[:, :c], stride=settings["stride"], padding=settings["padding"],
                  dilation=settings["dilation"])[0][0]


# In the page: set each control named (as a reader does: a change event), and read the output maps' numbers.
SHOWN = """async (all) => {
    const root = document.querySelector('.conv-widget'), read = [];
    for (const settings of all) {
        for (const [key, value] of Object.entries(settings)) {
            const menu = root.querySelector(`select[name=${key}]`);
            if (!menu) return `no control ${key}`;
            menu.value = String(value);
            menu.dispatchEvent(new Event('change'));
        }
        read.push([...root.querySelectorAll('.cw-output table')].map(table =>
            [...table.tBodies[0].rows].map(row => [...row.cells].map(cell => cell.textContent))));
    }
    return read;
}"""
SELECTED = """() => { const root = document.querySelector('.conv-widget');
    return {sum: root.querySelector('.cw-sum').textContent,
            terms: [...root.querySelectorAll('.cw-terms li')].map(li => li.innerText)}; }"""


def shown(texts) -> np.ndarray:
    return np.array([[[float(t.replace(MINUS, "-")) for t in row] for row in table] for table in texts])


@pytest.mark.slow
def test_the_widgets_in_chromium(server, namespaces):
    playwright = pytest.importorskip("playwright.sync_api")
    errors = []
    with playwright.sync_playwright() as p:
        browser = _chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
            for name, doc in PAGES:
                spec = WIDGETS[name]
                page.goto(server + built_folder(doc).as_posix() + "/")
                page.wait_for_selector(".conv-widget .cw-output table")
                x = value(namespaces, name, spec["x"])[0]
                w = value(namespaces, name, spec["w"]) if "w" in spec else None

                # the page's settings, as its juanji code printed them
                for changed, expression in spec["shown"].items():
                    np.testing.assert_array_equal(shown(page.evaluate(SHOWN, [dict(changed)])[0]),
                                                  value(namespaces, name, expression), err_msg=page_id(doc))
                if doc.name.endswith(".zh.md"):
                    labels = page.locator(".conv-widget").inner_text()
                    assert all(word in labels for word in CHINESE[name]), (page_id(doc), labels)
                    continue

                # every setting of the grid, as juanji computes it (a pooling grid on the pooling page)
                grid = POOL_GRID if "w" not in spec else {
                    key: choices for key, choices in CONV_GRID.items() if key != "channels" or x.shape[0] > 1}
                settings = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
                read = page.evaluate(SHOWN, settings)
                assert not isinstance(read, str), (page_id(doc), read)
                wrong = [s for s, texts in zip(settings, read)
                         if not np.allclose(shown(texts), juanji_output(x, w, {"channels": x.shape[0], **s}),
                                            rtol=0, atol=5e-4)]
                assert not wrong, f"{page_id(doc)}: the widget's output is not juanji's for {wrong}"
            assert not errors, errors

            # the multiply-accumulate of the selected output, stepped by the arrow keys and the buttons
            page.goto(server + "concepts/convolution/")
            x, w = value(namespaces, "concepts/convolution", "x")[0], value(namespaces, "concepts/convolution", "w")
            assert page.locator(".conv-widget .cw-sum").get_attribute("aria-live") == "polite"
            output = page.locator(".conv-widget .cw-output")
            output.focus()
            for press, where in [(None, (0, 0)), ("ArrowRight", (0, 1)), ("ArrowDown", (1, 1)),
                                 ("next", (1, 2)), ("previous", (1, 1)), ("ArrowUp", (0, 1)),
                                 ("ArrowLeft", (0, 0)), ("ArrowLeft", (3, 3)), ("ArrowRight", (0, 0))]:
                if press in ("next", "previous"):
                    page.locator(".conv-widget .cw-steps button", has_text=press).click()
                    output.focus()
                elif press:
                    page.keyboard.press(press)
                lines, said = multiply_accumulate(x, w, 0, *where)
                assert page.evaluate(SELECTED) == {"sum": said, "terms": lines}, (press, where)
            assert page.evaluate(SELECTED)["sum"] == f"y[0,0,0] = 13 + {MINUS}2 + 8 = 19"

            # the padding's zeros named as zeros (the padding-stride page starts with padding 1)
            page.goto(server + "concepts/padding-stride/")
            image, edge = value(namespaces, "concepts/padding-stride", "image")[0], \
                value(namespaces, "concepts/padding-stride", "same.params['weight']")
            lines, said = multiply_accumulate(image, edge, 0, 0, 0, padding=1)
            assert page.evaluate(SELECTED) == {"sum": said, "terms": lines}
            assert lines[0].startswith("0·w[0,0,0,0] + 0·w[0,0,0,1] + 0·w[0,0,0,2] + 0·w[0,0,1,0] + x[0,0,0]·")

            # a broken data attribute: one line saying what is wrong, no exception
            said = page.evaluate("""async () => {
                const src = document.querySelector('script[type=module][src*="conv-widget"]').src;
                const {mount} = await import(src);
                return [['[[1, 2]]', 'data-x is not a 4-D array'],
                        ['[[[[1, 2], [3]]]]', 'data-x is not a 4-D array of numbers, all rows alike'],
                        ['[[[[1, 2]]]', 'data-x is not JSON']].map(([x, message]) => {
                    const root = Object.assign(document.createElement('div'), {className: 'conv-widget'});
                    root.dataset.x = x;
                    root.dataset.w = '[[[[1]]]]';
                    document.body.append(root);
                    mount(root);
                    return [root.textContent, 'conv-widget: ' + message];
                });
            }""")
            assert all(text == expected for text, expected in said), said
            assert not errors, errors
        finally:
            browser.close()
