"""The scaling report: the fitted log-log slope recovers the exponent of synthetic timings (against the batch, and
against the pixels from 64 on for ResNet-18, whose point at 32 is another network), the table gives every
point's time, ratio and memory, the flagging sentence names exactly the series where juanji's slope is the
larger, and the plot is a PNG of the figure."""
import numpy as np
import pytest
from matplotlib.image import imread

from juanji.bench.rows import SCALING
from juanji.bench.scaling import axis_value, fit_slope, format_scaling, plot_scaling, slopes

# {series: {side: exponent}}: the synthetic time of a point is 1 ms × (its batch or pixels) ** exponent
EXPONENTS = {"lenet5-inference": {"juanji numpy": 0.9, "juanji numba": 0.75, "PyTorch": 0.7},
             "lenet5-train": {"juanji numpy": 0.8, "juanji numba": 0.85, "PyTorch": 0.85},
             "resnet18-train": {"juanji numpy": 1.0, "juanji numba": 1.2, "PyTorch": 1.1}}


def synthetic(exponents=EXPONENTS) -> dict:
    results = {}
    for key, sides in exponents.items():
        results[key] = {}
        for side, k in sides.items():
            results[key][side] = {}
            for point in SCALING[key].points:
                seconds = 1e-3 * axis_value(key, point) ** k
                if point < SCALING[key].fit_from:
                    seconds *= 50           # the CIFAR stem's point: far off the line, and out of the fit
                results[key][side][point] = {"seconds": (seconds, 1.1 * seconds), "memory MiB": 2.0 * point}
    return results


def test_the_fit_recovers_the_exponent_of_a_power_law_even_with_noise():
    batches = np.array([1, 8, 64, 256])
    assert fit_slope(batches, 3e-4 * batches ** 0.75) == pytest.approx(0.75, abs=1e-9)
    noise = np.random.default_rng(0).uniform(0.95, 1.05, batches.size)
    assert fit_slope(batches, 3e-4 * batches ** 0.75 * noise) == pytest.approx(0.75, abs=0.02)


def test_each_series_slope_is_fitted_against_batch_or_pixels_and_leaves_the_cifar_stem_out():
    results = synthetic()
    for key, sides in EXPONENTS.items():
        assert slopes(key, results[key]) == pytest.approx(sides, abs=1e-9)
    assert axis_value("resnet18-train", 224) == 224 * 224 and axis_value("lenet5-train", 8) == 8


def test_the_table_gives_time_ratio_memory_and_slopes_and_flags_where_juanji_grows_faster():
    report = format_scaling(synthetic())
    assert "LeNet-5 inference against the batch (input 1×28×28):" in report
    assert "ResNet-18 train step against the input size (batch 8):" in report
    assert ("| batch | juanji numpy ms (min/med) | juanji numba ms (min/med) | PyTorch ms (min/med) | numpy/PyTorch "
            "| numba/PyTorch | juanji numpy MiB | juanji numba MiB | PyTorch MiB |") in report
    # at batch 8: 1 ms × 8^0.9 = 6.50 ms, 8^0.75 = 4.76 ms, against 1 ms × 8^0.7 = 4.29 ms
    assert "| 8 | 6.50 / 7.15 | 4.76 / 5.23 | 4.29 / 4.72 | **1.52×** | **1.11×** | 16 | 16 | 16 |" in report
    assert "| 32 (CIFAR stem) |" in report
    assert "juanji numpy **0.90**, juanji numba **0.75**, PyTorch **0.70**" in report
    assert "from 64 pixels on" in report
    flagged = report.split("juanji's time grows faster than PyTorch's (a larger slope) in: ")[1].split("\n")[0]
    assert flagged == ("LeNet-5 inference against the batch (input 1×28×28): juanji numpy 0.90, juanji numba 0.75 "
                       "against PyTorch's 0.70; ResNet-18 train step against the input size (batch 8): juanji numba "
                       "1.20 against PyTorch's 1.10.")      # an equal slope (0.85 in the train step) is not flagged
    assert "*Memory*: the worker process's peak RSS" in report
    calm = {key: {"juanji numpy": 0.5, "juanji numba": 0.6, "PyTorch": 1.0} for key in EXPONENTS}
    assert "In no series does juanji's time grow faster than PyTorch's" in format_scaling(synthetic(calm))


def test_the_plot_is_written_as_a_png_of_the_figure(tmp_path):
    path = tmp_path / "scaling.png"
    plot_scaling(synthetic(), path)
    image = imread(path)
    assert image.shape[:2] == (800, 1100)                        # 11 × 8 inches at 100 dpi
    assert image[..., :3].std() > 0.05                           # lines and labels, not a blank page
    assert [p.name for p in tmp_path.iterdir()] == ["scaling.png"]     # no temporary file left behind
