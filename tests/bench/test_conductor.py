"""The benchmark's command line refuses counts it cannot run with one argparse line and exit status 2."""
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
