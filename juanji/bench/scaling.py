"""How the cost grows (``python -m juanji.bench --scaling``): the series' table with the fitted log-log slope of
each side's time, the sentence that flags where juanji's grows faster than PyTorch's, and the plot.

``results``: {series key of ``rows.SCALING``: {side: {point: {"seconds": (min, median), "memory MiB": m}}}},
the sides in column order, PyTorch's under ``report.PYTORCH``."""
from __future__ import annotations

import numpy as np

from ..io import write_atomically
from .report import PYTORCH
from .rows import SCALING

MODEL_NAMES = {"lenet5": "LeNet-5", "resnet18": "ResNet-18"}

MEMORY = ("*Memory*: the worker process's peak RSS (its high-water mark, `ru_maxrss`) minus its RSS once it "
          "has imported its framework (juanji's layers, or torch) and before it builds anything: what the model, "
          "its input, the steps' activations and gradients and the allocator's keep added; the lowest of the "
          "point's processes. Each point ran in processes of its own, so each peak is that point's alone. Each "
          "includes what its framework loads at its first call, a constant that dominates the smallest points "
          "(juanji numba's: its compiled kernels).")


def axis_value(key: str, point: int) -> int:
    """What the slope is fitted against: the batch size, or the input's pixels (H × W)."""
    return point if SCALING[key].axis == "batch" else point * point


def fit_slope(xs, seconds) -> float:
    """The slope of the least-squares line through (log x, log seconds): the exponent k of time ∝ xᵏ."""
    return float(np.polyfit(np.log(xs), np.log(seconds), 1)[0])


def slopes(key: str, series: dict) -> dict:
    """{side: fitted slope of its minima} over the points from the series' ``fit_from`` on."""
    fit_from = SCALING[key].fit_from
    return {side: fit_slope([axis_value(key, p) for p in points if p >= fit_from],
                            [points[p]["seconds"][0] for p in points if p >= fit_from])
            for side, points in series.items()}


def title(key: str) -> str:
    s = SCALING[key]
    fixed = f"input {s.channels}×{s.size}×{s.size}" if s.axis == "batch" else f"batch {s.batch}"
    return f"{MODEL_NAMES[s.model]} {s.step} against the {s.axis} ({fixed})"


def steeper(results: dict) -> list[str]:
    """"series: side k, side k against PyTorch's k" for each series where a juanji side's slope is above
    PyTorch's, those sides named."""
    found = []
    for key, series in results.items():
        fitted = slopes(key, series)
        worse = [f"{side} {k:.2f}" for side, k in fitted.items() if side != PYTORCH and k > fitted[PYTORCH]]
        if worse:
            found.append(f"{title(key)}: {', '.join(worse)} against PyTorch's {fitted[PYTORCH]:.2f}")
    return found


def format_series(key: str, series: dict) -> str:
    """One series' table: each side's ms (min/median) per point, each juanji side's ratio to PyTorch of the
    minima, each side's memory; then the fitted slopes."""
    s = SCALING[key]
    sides = list(series)
    ours = [side for side in sides if side != PYTORCH]
    lines = [f"{title(key)}:", "",
             f"| {s.axis} | " + " | ".join(f"{side} ms (min/med)" for side in sides) + " | "
             + " | ".join(f"{side.removeprefix('juanji ')}/PyTorch" for side in ours) + " | "
             + " | ".join(f"{side} MiB" for side in sides) + " |",
             "|" + "---|" * (1 + 2 * len(sides) + len(ours))]
    for point in series[sides[0]]:
        figures = {side: series[side][point] for side in sides}
        cells = [f"{point}" + (" (CIFAR stem)" if point < s.fit_from else "")]
        cells += [f"{best * 1e3:.2f} / {median * 1e3:.2f}" for best, median in
                  (figures[side]["seconds"] for side in sides)]
        cells += [f"**{figures[side]['seconds'][0] / figures[PYTORCH]['seconds'][0]:.2f}×**" for side in ours]
        cells += [f"{figures[side]['memory MiB']:.0f}" for side in sides]
        lines.append("| " + " | ".join(cells) + " |")
    against = "log batch" if s.axis == "batch" else "log pixels (H × W)"
    where = (f", from {s.fit_from} pixels on (below, ResNet-18 has the CIFAR stem: another network)"
             if s.fit_from > 1 else "")
    fitted = ", ".join(f"{side} **{k:.2f}**" for side, k in slopes(key, series).items())
    lines += ["", f"Fitted slope of log time (the minima) against {against}{where}: {fitted}."]
    return "\n".join(lines)


def format_scaling(results: dict) -> str:
    """Every series' table, then the flagging sentence and what the memory figure means."""
    flagged = steeper(results)
    verdict = ("juanji's time grows faster than PyTorch's (a larger slope) in: " + "; ".join(flagged) + "."
               if flagged else "In no series does juanji's time grow faster than PyTorch's (no larger slope).")
    return "\n\n".join([*(format_series(key, series) for key, series in results.items()), verdict, MEMORY])


def plot_scaling(results: dict, path) -> None:
    """Time (top) and memory (bottom) of every series on log-log axes, the batch series on the left, the
    input-size series on the right; one colour per side, one line style per series; a PNG at ``path``."""
    from matplotlib.figure import Figure        # the cli extra's; only --scaling draws

    figure = Figure(figsize=(11, 8))
    axes = figure.subplots(2, 2)
    sides = list(next(iter(results.values())))
    columns = (("batch", "batch size", "against the batch size"),
               ("input size", "input pixels (H × W)", "against the input pixels (hollow: another stem, not fitted)"))
    for column, (axis, label, heading) in enumerate(columns):
        keys = [key for key in results if SCALING[key].axis == axis]
        for style, key in zip(("-", "--", ":"), keys):
            for colour, side in enumerate(sides):
                name = f"{side}, {MODEL_NAMES[SCALING[key].model]} {SCALING[key].step}"
                for row, figure_of in enumerate((lambda p: p["seconds"][0] * 1e3, lambda p: p["memory MiB"])):
                    # log axes: a point whose process added no memory above its import is left out
                    points = [(axis_value(key, x), figure_of(p), x >= SCALING[key].fit_from)
                              for x, p in results[key][side].items() if figure_of(p) > 0]
                    axes[row, column].plot([x for x, _, fitted in points if fitted],
                                           [y for _, y, fitted in points if fitted], style, marker="o",
                                           color=f"C{colour}", label=name)
                    axes[row, column].plot([x for x, _, fitted in points if not fitted],
                                           [y for _, y, fitted in points if not fitted], "o", fillstyle="none",
                                           color=f"C{colour}")
        for row, quantity in enumerate(("time per call, ms (min)", "peak RSS above the import, MiB")):
            axes[row, column].set(xscale="log", yscale="log", xlabel=label, ylabel=quantity)
            axes[row, column].set_title(heading, fontsize=10)
            axes[row, column].grid(alpha=0.3, which="both")
            axes[row, column].legend(fontsize=7)
    figure.tight_layout()
    write_atomically(path, lambda f: figure.savefig(f, dpi=100, format="png"))
