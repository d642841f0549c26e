"""The benchmark's command line refuses counts and kernels it cannot run with one line and exit status 2."""
import os
import subprocess
import sys

import pytest

from juanji.bench.conductor import main


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--threads", "1", "-2"], ["--processes", "0"],
                                  ["--breakdown", "lenet5", "--batch", "x"], ["--breakdown", "vgg16"]])
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("python -m juanji.bench: error: argument --")


def test_unknown_kernels_in_the_environment_exit_2_with_one_line():
    env = dict(os.environ, JUANJI_KERNELS="fortran")
    result = subprocess.run([sys.executable, "-m", "juanji.bench", "--breakdown", "lenet5"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == ("python -m juanji.bench: error: JUANJI_KERNELS: kernels must be one "
                                              "of numpy, numba, got 'fortran'")


def test_a_scaling_worker_without_its_point_exits_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--scaling", "--worker", "juanji", "--series", "lenet5-train"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == "python -m juanji.bench: error: a --scaling worker needs --series and --at"
