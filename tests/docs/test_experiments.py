"""docs/experiments/experiments.py: the measurements the pages quote. It runs (in its quick mode), its committed
JSON files are full runs that say how they were made, and every number the pages' measured sections quote is
the JSON's: the tables cell by cell, the prose from the same values."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from juanji.models import create

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "docs" / "experiments"
SCRIPT = FOLDER / "experiments.py"
CONCEPTS = ROOT / "docs" / "concepts"

spec = importlib.util.spec_from_file_location("experiments", SCRIPT)
experiments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(experiments)


def committed(name: str) -> dict:
    return json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8"))


def shape_of(value):
    """The keys of nested dicts, a list by its first element's shape: what two runs of an experiment share."""
    if isinstance(value, dict):
        return {key: shape_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape_of(value[0])] if value else []
    return type(value).__name__ if not isinstance(value, (int, float)) else "number"


# -- the script ------------------------------------------------------------------------------------------------
def test_the_quick_mode_runs_and_writes_what_the_full_run_wrote(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in experiments.NAMES:
        quick = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        assert quick["quick"] is True and "--quick" in quick["command"]
        assert shape_of(quick) == shape_of(committed(name)), f"{name}: the quick run's JSON has other fields"
        accuracies = re.findall(r'"\w*accuracy": ([-\d.e]+)', json.dumps(quick["results"]))
        assert accuracies and all(0 <= float(a) <= 1 for a in accuracies), name


def test_quick_numbers_never_replace_the_pages(capsys):
    before = {name: (FOLDER / f"{name}.json").read_bytes() for name in experiments.NAMES}
    with pytest.raises(SystemExit) as exit:
        experiments.main(["--quick"])
    assert exit.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("give --out DIR, the pages' JSON files are kept")
    assert before == {name: (FOLDER / f"{name}.json").read_bytes() for name in experiments.NAMES}
    with pytest.raises(SystemExit):
        experiments.main(["pools", "--out", "unused"])
    assert "unknown experiment 'pools' (known: pooling, heads)" in capsys.readouterr().err


@pytest.mark.parametrize("name", experiments.NAMES)
def test_the_committed_results_are_full_runs_that_say_how_they_were_made(name):
    data = committed(name)
    assert data["experiment"] == name and data["quick"] is False
    assert data["command"].startswith("python docs/experiments/experiments.py") and "--quick" not in data["command"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", data["date"]) and data["machine"] and data["seconds"] > 0
    assert data["seeds"]


def test_the_variants_are_lenet5_with_another_downsampling():
    def weights(model):
        return [p.shape for _, p, _ in model.parameters()]

    lenet5 = create("lenet5")
    assert {n: p.shape for n, p, _ in experiments.lenet("max").parameters()} == \
        {n: p.shape for n, p, _ in lenet5.parameters()}
    x = np.random.default_rng(0).normal(size=(2, 1, 28, 28)).astype(np.float32)
    for downsampling, side in (("max", 5), ("avg", 5), ("stride", 5), ("none", 24)):
        model = experiments.lenet(downsampling)
        if side == 5:
            assert weights(model) == weights(lenet5), downsampling
        features, head = experiments.split_at(model, experiments.flatten_index(model))
        assert features(x).shape == (2, 16 * side * side), downsampling
        assert np.array_equal(head(features(x)), model(x))


def test_shifted_moves_the_image_and_brings_in_background():
    image = np.arange(1, 26, dtype=np.uint8).reshape(1, 1, 5, 5)
    right = experiments.shifted(image, 0, 2)
    assert np.array_equal(right[..., 2:], image[..., :3]) and not right[..., :2].any()
    up = experiments.shifted(image, -1, 0)
    assert np.array_equal(up[..., :4, :], image[..., 1:, :]) and not up[..., 4, :].any()
    assert right.dtype == np.uint8 and image[0, 0, 0, 0] == 1           # a new array; the input unchanged


# -- the pages' numbers ----------------------------------------------------------------------------------------
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def section(page: Path, anchor: str) -> str:
    """The text of the section whose heading ends in ``{#anchor}``, up to the next heading of its level."""
    text = page.read_text(encoding="utf-8")
    found = re.search(rf"^(#+) .*\{{#{anchor}\}}[ \t]*$", text, re.M)
    assert found, f"{page.name} has no section {{#{anchor}}}"
    end = re.compile(rf"^#{{1,{len(found.group(1))}}} ", re.M).search(text, found.end())
    return text[found.end():end.start() if end else len(text)]


def table_rows(text: str) -> list[list[str]]:
    """The numbers of each body row of the section's tables, its first cell (the row's name) left out."""
    lines = [line.strip() for line in text.splitlines()]
    rows = []
    for index, line in enumerate(lines):
        ruled = index + 1 < len(lines) and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[index + 1])
        if line.startswith("|") and not ruled and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows.append([number for cell in cells[1:] for number in NUMBER.findall(cell)])
    return rows


def prose_decimals(text: str) -> list[str]:
    """The decimal numbers of the section's prose: tables, code and formulas left out."""
    text = re.sub(r"^( *)```.*?^\1```[ \t]*$|\$[^$\n]+\$|`[^`\n]*`|\]\([^)\s]*\)", " ", text, flags=re.M | re.S)
    prose = "\n".join(line for line in text.splitlines() if not line.startswith("|"))
    return [number for number in NUMBER.findall(prose) if "." in number]


def three(value: float) -> str:
    return f"{value:.3f}"


def pooling_rows(data: dict) -> list[list[str]]:
    results = data["results"]
    accuracy = [[f"{r['parameters']:,}", three(r["mean"]["train_accuracy"]), three(r["mean"]["test_accuracy"]),
                 three(r["spread"]["test_accuracy"]), three(r["mean"]["gap"]), three(r["spread"]["gap"])]
                for r in results.values()]
    shifts = [[three(r["mean"][measure][str(pixels)]) for measure in ("changed", "feature_change")
               for pixels in experiments.SHIFTS] for r in results.values()]
    return accuracy + shifts


def heads_rows(data: dict) -> list[list[str]]:
    results = data["results"]
    rows = [[str(results[features]["size"]), *(three(results[features][name]["test_accuracy"])
                                               for name in ("linear_svm", "logistic_regression", "decision_tree"))]
            for features in ("pixels", "conv", "penultimate")]
    return rows


def leaves(value) -> list[float]:
    """The numbers the pages may quote: every float of the results but those of single seeds (``runs``)."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() if key != "runs" for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value] if isinstance(value, float) else []


QUOTED = [("pooling", "pooling-measured", pooling_rows), ("heads", "other-heads", heads_rows)]
PAGES = {"pooling": "pooling", "heads": "classifier"}


@pytest.mark.parametrize("language", ["", ".zh"])
@pytest.mark.parametrize("name, anchor, rows", QUOTED, ids=[q[0] for q in QUOTED])
def test_every_number_a_page_quotes_is_the_experiments(name, anchor, rows, language):
    page = CONCEPTS / f"{PAGES[name]}{language}.md"
    data = committed(name)
    text = section(page, anchor)
    assert table_rows(text) == rows(data), f"{page.name}: the tables are not {FOLDER.name}/{name}.json's (rows)"
    known = {three(value) for value in leaves(data["results"])}
    loose = [number for number in prose_decimals(text) if number not in known]
    assert not loose, f"{page.name} quotes numbers that {name}.json does not hold: {loose}"
    if name == "heads":
        assert three(data["results"]["network"]["test_accuracy"]) in text, f"{page.name}: the network's own accuracy"
    setup = data["setup"]
    assert setup.get("network", "") in text, f"{page.name} does not give the command of the network: {setup['network']}"
    for count in ("train_images", "test_images", "shift_images", "limit"):
        if setup.get(count):
            assert f"{setup[count]:,}" in text, f"{page.name} does not say the {count}: {setup[count]:,}"
