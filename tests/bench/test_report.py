"""The benchmark report's header names the CPU and its vector extensions; the epoch table gives each
process's peak RSS, its RSS after import and the difference, and says what each measures; the hand-off rows
have a table of their own."""
import os

import pytest

from juanji.bench.report import VECTOR_EXTENSIONS, cpu_description, format_epoch, format_handoff, format_table
from juanji.bench.rows import CONV_ROWS, conv_flops


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="Linux only")
def test_cpu_description_lists_this_machines_vector_extensions():
    with open("/proc/cpuinfo") as f:
        lines = f.read().split("\n\n")[0].splitlines()
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith(("flags", "Features"))), [])
    described = cpu_description()
    listed = described.split("(vector extensions: ")[1].rstrip(")").split()
    assert listed == [flag for flag in flags if VECTOR_EXTENSIONS.fullmatch(flag)]
    assert "avx2" in listed or "avx2" not in flags


def test_cpu_description_of_x86_and_arm_cpuinfo_files(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 "
                   "avx f16c avx2 smep avx512f avx512bw avx512_vnni avx512_bf16 rdrand\n\nprocessor\t: 1\n")
    assert cpu_description(str(x86)) == ("AMD EPYC 9654 (vector extensions: fma sse4_2 avx f16c avx2 avx512f "
                                         "avx512bw avx512_vnni avx512_bf16)")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 asimdhp sve i8mm bf16\n")
    assert cpu_description(str(arm)).endswith("(vector extensions: asimd asimdhp sve i8mm bf16)")
    assert cpu_description(str(tmp_path / "missing"))


def test_epoch_table_gives_best_and_median_of_all_epochs_and_the_memory_of_the_leanest_process():
    epochs = {"juanji numpy": [{"epoch seconds": [6.0, 7.0, 9.0], "import RSS MiB": 60.0, "peak RSS MiB": 310.0},
                               {"epoch seconds": [8.0, 8.5, 6.5], "import RSS MiB": 50.0, "peak RSS MiB": 330.0}],
              "PyTorch": [{"epoch seconds": [5.0, 4.0, 6.0], "import RSS MiB": 300.0, "peak RSS MiB": 500.0},
                          {"epoch seconds": [7.0, 5.5, 6.5], "import RSS MiB": 290.0, "peak RSS MiB": 520.0}]}
    table = format_epoch(epochs, 2, processes=2)
    assert "6 epochs per side, 3 in each of 2 fresh processes" in table
    assert "| | juanji numpy | PyTorch | numpy/PyTorch |" in table
    assert "| wall time, best | 6.0 s | 4.0 s | **1.50×** |" in table
    assert "| wall time, median | 7.5 s | 5.8 s | **1.30×** |" in table          # 7.5 / 5.75
    assert "| RSS after import | 60 MiB | 300 MiB | **0.20×** |" in table
    assert "| peak RSS | 310 MiB | 500 MiB | **0.62×** |" in table
    assert "| peak RSS above the import | 250 MiB | 200 MiB | **1.25×** |" in table
    assert "*RSS after import*" in table and "*Peak RSS*" in table and "*Above the import*" in table


def test_rows_table_gives_every_side_its_ratio_to_pytorch_and_the_conv_rate_against_sgemm():
    row = next(iter(CONV_ROWS))
    sgemm_seconds = 2 * 2048 ** 3 / 100e9                       # 100 GFLOP/s
    forward_seconds = conv_flops(*CONV_ROWS[row]) / 50e9         # half of it
    numpy_side = {f"{name} {kind}": (forward_seconds, 2 * forward_seconds) for name in CONV_ROWS
                  for kind in ("fwd", "fwd+bwd")}
    numba_side = {key: (best / 4, best / 2) for key, (best, _) in numpy_side.items()}
    theirs = {key: (2 * best, 3 * best) for key, (best, _) in numpy_side.items()}
    sgemm = {"sgemm 2048³": (sgemm_seconds, sgemm_seconds)}
    handoff = {"split in 2": (20e-6, 25e-6), "not split": (1e-6, 1.5e-6)}
    results = {t: {"juanji numpy": {**numpy_side, **sgemm, **handoff},
                   "juanji numba": {**numba_side, **sgemm, **handoff}, "PyTorch": {**theirs, **handoff}}
               for t in (1, 2)}
    table = format_table(results)
    assert "split in 2" not in table and "not split" not in table       # the hand-off has a table of its own
    header = ("| row | juanji numpy ms (min/med) | juanji numba ms (min/med) | PyTorch ms (min/med) | "
              "numpy/PyTorch | numba/PyTorch |")
    assert table.count(header) == 2 and "1 thread:" in table and "2 threads:" in table
    ms = forward_seconds * 1e3
    assert (f"| {row} fwd | {ms:.2f} / {2 * ms:.2f} | {ms / 4:.2f} / {ms / 2:.2f} | {2 * ms:.2f} / {3 * ms:.2f} "
            "| **0.50×** | **0.12×** |") in table
    assert f"| sgemm 2048³ | {sgemm_seconds * 1e3:.2f} / {sgemm_seconds * 1e3:.2f} | " in table
    assert "NumPy sgemm 2048³ at 2 threads: **100 GFLOP/s**" in table
    assert f"| {row} | 50 | 50 % | 150 | 150 % |" in table


def test_handoff_table_gives_each_side_split_and_unsplit_calls_and_their_difference_above_one_thread():
    rows = {"juanji numpy": {"split in 2": (120e-6, 130e-6), "not split": (1.0e-6, 1.1e-6)},
            "PyTorch": {"split in 2": (9.5e-6, 12e-6), "not split": (2.5e-6, 3e-6)}}
    table = format_handoff({1: {}, 2: rows})
    assert "| threads | side | split in 2 | not split | hand-off |" in table
    assert "| 2 | juanji numpy | 120.0 / 130.0 | 1.0 / 1.1 | **119.0** |" in table
    assert "| 2 | PyTorch | 9.5 / 12.0 | 2.5 / 3.0 | **7.0** |" in table
    assert "| 1 |" not in table and "`at::parallel_for`" in table and "over_batch" in table
    assert format_handoff({1: {}}) is None
