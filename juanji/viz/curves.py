"""Training curves: loss and accuracy per epoch of one or several runs, on one figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .fonts import with_label_fonts  # noqa: E402


@with_label_fonts
def plot_curves(runs: dict, target) -> None:
    """``runs`` maps a run name to its metrics history (dicts with epoch, train/test loss and accuracy);
    ``target`` is a path or a binary file."""
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for index, (name, history) in enumerate(runs.items()):
        epochs = [m["epoch"] for m in history]
        colour = f"C{index % 10}"                       # one colour per run: train dashed, test solid
        for axes, key in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
            axes.plot(epochs, [m[f"train_{key}"] for m in history], "--", marker="o", color=colour,
                      label=f"{name} train")
            axes.plot(epochs, [m[f"test_{key}"] for m in history], "-", marker="o", color=colour,
                      label=f"{name} test")
    for axes, title in ((loss_axes, "cross-entropy loss"), (accuracy_axes, "accuracy")):
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target, dpi=100, format="png")
    plt.close(figure)
