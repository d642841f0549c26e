"""The pages' figures: docs/figures/make_figures.py (the concept pages' drawings) and show_figures.py (the
pictures of ``juanji show``) run, every page shows figures that exist, drawn in its language, and the numbers
a figure shows are those of the functions the page teaches."""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from juanji.functional import conv2d_reference, im2col, max_pool2d
from juanji.train import Trainer, TrainConfig

from test_docs import PAGES, page_id

ROOT = Path(__file__).resolve().parents[2]
CONCEPTS = ROOT / "docs" / "concepts"
FIGURES = ROOT / "docs" / "images" / "figures"
IMAGES = ROOT / "docs" / "images"
# The one picture drawn in English alone: a screenshot of `juanji serve`'s page, whose words are English
# (docs/images/serve_screenshot.py); a Chinese one waits for a Chinese page.
ENGLISH_ONLY = {"serve.png"}


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "figures" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures = script("make_figures")
show_figures = script("show_figures")


def shown(page: Path) -> list[str]:
    """The generated figures a page links to (file names)."""
    return re.findall(r"\(\.\./images/figures/([\w.-]+)\)", page.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_the_generator_writes_every_figure(tmp_path):
    # Every figure in English; in Chinese the still ones (the animations share their drawing code, and
    # their frames take most of the time).
    still = [name for name in figures.NAMES if name not in figures.ANIMATED]
    written = figures.make(out=tmp_path, languages=("en",)) + figures.make(still, tmp_path, ("zh",))
    for path in written:
        with Image.open(path) as image:
            assert image.width > 200 and image.height > 100, path.name
            if path.suffix == ".gif":
                assert image.n_frames > 1, f"{path.name} does not move"
    expected = {figures.file_name(name, language) for name in figures.NAMES for language in figures.LANGUAGES}
    assert {path.name for path in FIGURES.iterdir()} == expected, "re-run python docs/figures/make_figures.py"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_picture_a_page_shows_exists_in_its_language(page):
    language = "zh" if page.name.endswith(".zh.md") else "en"
    for link in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        path = (page.parent / link).resolve()
        assert path.exists(), f"{page_id(page)} shows {link}, which does not exist"
        assert f".{language}." in path.name or path.name in ENGLISH_ONLY, \
            f"{page_id(page)} shows {link}, not its {language} version"


@pytest.mark.slow
def test_the_show_pictures_are_drawn_in_both_languages(tmp_path):
    """show_figures.py draws each picture from a run in English and in Chinese (here from a run of one epoch
    on 500 images, for both of its runs), and the pages' copies are all there."""
    run = tmp_path / "run"
    Trainer(TrainConfig(epochs=1, limit=500, out=str(run)), progress=False).fit()
    written = show_figures.make([run, run], tmp_path / "out")
    assert {path.name for path in written} == {show_figures.file_name(name, language)
                                               for name in show_figures.FIGURES for language in show_figures.LANGUAGES}
    for name in show_figures.FIGURES:
        en, zh = (np.asarray(Image.open(tmp_path / "out" / show_figures.file_name(name, language)).convert("L"))
                  for language in show_figures.LANGUAGES)
        assert en.shape[1] > 300 and zh.shape[1] > 300, name
        assert en.shape != zh.shape or not np.array_equal(en, zh), f"{name}: the Chinese picture has the English words"
    kept = {path.name for path in IMAGES.glob("*.png") if path.name.endswith((".en.png", ".zh.png"))}
    assert kept == {path.name for path in written}, "re-run python docs/figures/show_figures.py RUN RUN_20K"


@pytest.mark.parametrize("page", sorted(CONCEPTS.glob("*.md")), ids=lambda p: p.name)
def test_every_concept_page_shows_a_figure_in_its_language(page):
    language = "zh" if page.name.endswith(".zh.md") else "en"
    names = shown(page)
    assert names, f"{page.name} shows no generated figure"
    for name in names:
        assert f".{language}." in name, f"{page.name} shows {name}, not its {language} version"
        assert (FIGURES / name).exists(), f"{page.name} shows {name}, which make_figures.py did not write"


def test_conv_figures_are_conv2d_and_im2col():
    slide = figures.data_conv_slide()
    assert np.array_equal(slide["map"], conv2d_reference(slide["image"][None, None], slide["kernel"][None, None])
                          [0, 0])
    channels = figures.data_conv_channels()
    assert np.array_equal(channels["parts"].sum(axis=0), channels["y"])
    assert np.array_equal(channels["y"], conv2d_reference(channels["x"][None], channels["w"][None])[0, 0])
    cols = figures.data_im2col()
    x = cols["x"][None, None]
    assert np.array_equal(cols["cols"], im2col(x, (3, 3), (1, 1), (1, 1), (2, 2))[0])
    # column p = the window of output position p, read row by row
    assert np.array_equal(cols["cols"][:, 3], cols["x"][1:4, 1:4].ravel())


def test_window_figure_reads_the_cells_of_the_output_size_formula():
    for name, d in figures.data_window_geometry().items():
        s, dil, n = d["stride"], d["dilation"], d["padded"]
        assert d["out"] == (n - dil * 2 - 1) // s + 1
        for position, window in enumerate(d["windows"]):
            i, j = divmod(position, d["out"])
            expected = [(i * s + r * dil) * n + j * s + c * dil for r in range(3) for c in range(3)]
            assert list(window) == expected, (name, position)


def test_padding_figure_counts_the_windows_that_read_each_pixel():
    for (kernel, padding), uses in figures.data_padding_uses().items():
        size = uses.shape[0]
        counted = np.zeros((size + 2 * padding,) * 2)
        out = size + 2 * padding - kernel + 1
        for i in range(out):                    # every window of the padded input, one by one
            for j in range(out):
                counted[i:i + kernel, j:j + kernel] += 1
        assert np.array_equal(uses, counted[padding:padding + size, padding:padding + size]), (kernel, padding)
        assert uses[size // 2, size // 2] == kernel * kernel and uses[0, 0] == (padding + 1) ** 2


def test_filters_and_feature_maps_are_conv2d():
    filters = figures.data_filters()
    weight = np.stack(list(figures.FILTERS.values()))[:, None]
    image = filters["image"][None, None]
    assert np.allclose(filters["maps"], conv2d_reference(image, weight, padding=1)[0])
    layer = figures.data_layer_maps()
    assert np.array_equal(layer["a"], np.maximum(layer["z"], 0))
    shift = figures.data_shift()
    # shift in, shift out: away from the borders the map of the shifted image is the shifted map
    assert np.allclose(shift["shifted_map"][:, 4:-1], shift["map"][:, 1:-4])


def test_full_convolution_figure_is_the_backward_pass():
    data = figures.data_full_conv()
    padded, rot = data["dz_padded"], data["rot"]
    full = np.array([[(padded[i:i + 2, j:j + 2] * rot).sum() for j in range(3)] for i in range(3)])
    assert np.array_equal(data["dx"], full)
    assert np.array_equal(rot, data["w"][::-1, ::-1])


def page_array(page: Path, name: str) -> np.ndarray:
    """The array a page's code assigns to ``name`` first: ``>>> name = np.array([[...],`` (continued on
    ``...`` lines) ``, dtype=...)``."""
    text = page.read_text(encoding="utf-8")
    found = re.search(rf"^>>> {name} = np\.array\((.*?), dtype", text, re.M | re.S)
    assert found, f"{page.name} assigns no np.array to {name}"
    return np.array(ast.literal_eval(found.group(1).replace("...", "")), dtype=float)


@pytest.mark.parametrize("page", ["pooling.md", "pooling.zh.md"])
def test_pooling_figure_shows_the_pages_numbers(page):
    data = figures.data_pool_backward()
    assert np.array_equal(data["x"], page_array(CONCEPTS / page, "x"))
    assert np.array_equal(data["dy"], page_array(CONCEPTS / page, "dy"))


def test_pooling_figure_routes_to_the_max_and_splits_the_average():
    data = figures.data_pool_backward()
    x, dy = data["x"], data["dy"]
    assert np.array_equal(data["max"], max_pool2d(x[None, None], 2)[0][0, 0])
    for i in range(2):
        for j in range(2):
            window = data["dx_max"][2 * i:2 * i + 2, 2 * j:2 * j + 2]
            assert window.sum() == dy[i, j]
            assert window.flat[np.argmax(x[2 * i:2 * i + 2, 2 * j:2 * j + 2])] == dy[i, j]
            assert np.all(data["dx_avg"][2 * i:2 * i + 2, 2 * j:2 * j + 2] == dy[i, j] / 4)


def test_activation_derivatives_are_the_slopes():
    data = figures.data_activations()
    z = data["z"]
    for name in ("sigmoid", "tanh"):
        assert np.allclose(np.gradient(data[name], z), data["d_" + name], atol=2e-3)
    assert np.array_equal(data["d_relu"], (z > 0).astype(float))


def test_optimizer_and_schedule_figures_match_the_optimization_page():
    paths = figures.data_valley()
    # the page's distances after 10 and 100 steps (SGD lr 0.02: 0.8171; momentum: 0.3194; Nesterov: 0.2637)
    for name, distance in (("SGD", 0.8171), ("momentum", 0.3194), ("Nesterov", 0.2637)):
        assert round(float(np.hypot(*paths[name][10])), 4) == distance
    rates = figures.data_schedules()
    assert [round(r, 4) for r in rates["StepLR(3, 0.5)"]] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025,
                                                              0.025, 0.0125]
    assert [round(r, 4) for r in rates["warmup"]] == [0.01, 0.04, 0.07, 0.1, 0.095, 0.0812, 0.0611, 0.0389,
                                                      0.0188, 0.005]


def test_one_by_one_and_receptive_field_figures():
    data = figures.data_one_by_one()
    assert np.allclose(data["y"], np.einsum("kc,chw->khw", data["w"], data["x"]))
    fields = figures.data_receptive_field()
    widths = {name: int(np.ptp(np.nonzero(g)[1])) + 1 for name, g in fields.items()}
    assert widths == {"1": 3, "2": 5, "3": 7, "pool": 8}          # r = 1 + 2 + 2 · 2, from 3×3, pool 2, 3×3


def test_fooling_figure_fools_the_model():
    data = figures.data_fooling()
    assert data["before"].argmax() == 9 and data["after"][8] >= 0.99        # ankle boot → bag
    assert np.all((data["fooled"] >= 0) & (data["fooled"] <= 1))
    assert np.abs(data["fooled"] - data["image"]).max() > 0


def test_lenet_maps_are_the_models_own_layers():
    data = figures.data_lenet_maps()
    model = figures.quick_lenet()
    conv = model[0]
    first = conv2d_reference(data["image"][None, None].astype(np.float64), conv.params["weight"],
                             conv.params["bias"], padding=2)[0]
    assert np.allclose(data["1"], np.maximum(first, 0), atol=1e-5)
    assert {name: maps.shape for name, maps in data.items() if name != "image"} == \
        {"1": (6, 28, 28), "2": (6, 14, 14), "4": (16, 10, 10), "5": (16, 5, 5)}
