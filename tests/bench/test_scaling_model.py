"""bench/scaling_model.py, the data-parallel step on paper: its table adds up (a ring Allreduce of ResNet-20's
gradients, counted from the model), its inputs come from the stored benchmark or are measured, and the table
that docs/distributed.md (and .zh.md) shows is the one its command prints."""
from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from juanji import models

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("scaling_model", ROOT / "bench" / "scaling_model.py")
scaling_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scaling_model)
PAGES = [ROOT / "docs" / "distributed.md", ROOT / "docs" / "distributed.zh.md"]


def run(capsys, *args) -> str:
    assert scaling_model.main(list(args)) == 0
    return capsys.readouterr().out


def table_rows(text: str) -> list[list[float]]:
    """The table's rows as numbers (thousands separators dropped)."""
    lines = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    return [[float(cell.replace(",", "")) for cell in line.strip("|").split("|")] for line in lines]


def table_lines(text: str) -> list[str]:
    """The lines of the first table whose header is the model's."""
    lines = text.splitlines()
    start = lines.index(scaling_model.HEADER.splitlines()[0])
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_the_gradients_are_resnet20_s_in_float32_with_the_sample_count():
    model = models.create("resnet20", num_classes=10, in_channels=3, input_size=32)
    buckets = scaling_model.bucket_bytes(0.25)
    assert sum(buckets) == 4 * (model.num_parameters() + 1) and len(buckets) > 1
    assert scaling_model.bucket_bytes(1024) == [sum(buckets)]


def test_one_bucket_on_two_ranks_at_one_gb_per_second_sends_its_bytes_once():
    # 2(p−1)/p = 1 at p = 2: the bytes over the bandwidth, and 2 latencies
    assert scaling_model.ring_allreduce_ms([10 ** 6], 2, bandwidth=1, latency_us=0) == pytest.approx(1.0)
    assert scaling_model.ring_allreduce_ms([10 ** 6], 2, bandwidth=1, latency_us=5) == pytest.approx(1.01)
    assert scaling_model.ring_allreduce_ms([10 ** 6], 1, bandwidth=1, latency_us=5) == 0


def test_the_table_adds_up(capsys):
    out = run(capsys, "--compute-ms", "100", "--loader-us", "10", "--bandwidth", "2", "--latency-us", "5",
              "--ranks", "1", "2", "64", "512")
    assert "compute: 100.00 ms per step (--compute-ms)" in out and "(--loader-us)" in out
    total, count = map(lambda s: int(s.replace(",", "")), re.search(r"gradients: ([\d,]+) bytes in (\d+) "
                                                                    r"Allreduces", out).groups())
    rows = table_rows(out)
    assert [row[0] for row in rows] == [1, 2, 64, 512]
    one_rank_step = rows[0][5]
    for ranks, batch, compute, loading, allreduce, step, rate, efficiency in rows:
        assert batch == 128 * ranks and compute == 100.0 and loading == pytest.approx(1.28, abs=0.05)
        expected = 2 * (ranks - 1) / ranks * total / 2e9 * 1e3 + count * 2 * (ranks - 1) * 5e-3
        assert allreduce == pytest.approx(expected, abs=0.005)
        assert step == pytest.approx(compute + loading + allreduce, abs=0.1)
        assert rate == pytest.approx(batch / step * 1e3, rel=2e-3)
        assert efficiency == pytest.approx(one_rank_step / step, abs=1e-3)
    assert rows[0][4] == 0 and rows[-1][7] < rows[1][7] < 1


def test_compute_comes_from_the_stored_benchmark(capsys):
    stored = scaling_model.stored_compute_ms(scaling_model.STORED)
    text = (ROOT / "bench" / "results" / "benchmark.md").read_text(encoding="utf-8")
    one_thread = text.split("\n1 thread:")[1].split("threads:")[0]
    row = next(line for line in one_thread.splitlines() if line.startswith("| train step resnet20 b128 |"))
    assert stored == min(float(cell.split("/")[0]) for cell in row.split("|")[2:4])
    out = run(capsys, "--loader-us", "10", "--ranks", "1")
    assert f"compute: {stored:.2f} ms per step (bench/results/benchmark.md: train step resnet20 b128" in out


def test_quick_mode_measures_the_loader(capsys):
    out = run(capsys, "--quick", "--compute-ms", "300", "--ranks", "1", "8")
    assert "µs per image (measured here, 1 thread)" in out
    (_, _, compute, loading, *_), _ = table_rows(out)
    assert 0 < loading < compute


def test_a_stored_benchmark_without_the_row_asks_for_the_figure(capsys, monkeypatch, tmp_path):
    (tmp_path / "benchmark.md").write_text("# an older benchmark\n\n1 thread:\n\n| row | juanji numpy ms (min/med) |\n"
                                           "|---|---|\n| train step lenet5 b64 | 3.92 / 4.06 |\n")
    monkeypatch.setattr(scaling_model, "STORED", str(tmp_path / "benchmark.md"))
    assert scaling_model.stored_compute_ms(str(tmp_path / "benchmark.md")) is None
    with pytest.raises(SystemExit) as exit:
        scaling_model.main(["--loader-us", "10"])
    assert exit.value.code == 2 and "has no train step resnet20 b128 row on 1 thread" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--bandwidth", "0"), ("--compute-ms", "nan"), ("--latency-us", "-1"),
                                           ("--ranks", "0")])
def test_bad_inputs_are_refused(option, value, capsys):
    with pytest.raises(SystemExit) as exit:
        scaling_model.main(["--compute-ms", "1", "--loader-us", "1", option, value])
    assert exit.value.code == 2 and "error:" in capsys.readouterr().err


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_page_shows_the_table_its_command_prints(page, capsys):
    text = page.read_text(encoding="utf-8")
    [command] = re.findall(r"^python bench/scaling_model\.py (?:.*\\\n)*.*$", text, re.M)   # with its \ lines
    args = shlex.split(command.replace("\\\n", " "))[2:]
    assert {"--compute-ms", "--loader-us", "--bandwidth", "--latency-us"} <= set(args)   # nothing measured
    shown = table_lines(text[text.index(command):])
    assert shown == table_lines(run(capsys, *args))
