"""State files read as trusted (issue 28): a resumed run's checkpoint is checked against the optimizer and model
it restores and against the run's config.json; a header's names and a zip's members are bounded before anything
is searched or opened; a config the Trainer could not read back is refused before it is written; Numba's cache
failing (full, read-only, garbled) costs a compilation and a warning naming it.  A refused resume answers with
one line (exit status 2) and keeps every file as it was.  (TensorBoard's writer on a full disk:
tests/test_tensorboard.py; the command a diverged run names: tests/test_bad_input_catalogue.py.)"""
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from juanji.cli import main
from juanji.schema import SchemaError
from juanji.train import TrainConfig, Trainer
from checkpoint_edits import add_members, rewrite
from disk_failures import mount_tmpfs, no_file_may_grow
from idx_data import idx_folder
from refusals import fails_cleanly, one_line_exit_2, snapshot


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch run (SGD with momentum) on a small IDX folder."""
    root = tmp_path_factory.mktemp("state-files")
    data = idx_folder(root / "data")
    assert main(["train", "--data", str(data), "--epochs", "1", "--batch-size", "16", "--out", str(root / "run"),
                 "--no-progress"]) == 0
    return root


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run (its config.json names the data folder beside the original)."""
    shutil.copytree(trained / "run", tmp_path / "run")
    return tmp_path / "run"


def optimizer_arrays_as(dtype):
    def change(arrays):
        for key in [k for k in arrays if k.startswith("optim/")]:
            arrays[key] = arrays[key].astype(dtype)
    return change


STRUCTURED = np.dtype([("a", "<f4")])

RESUME_CASES = {
    # every optimizer array checked for dtype and presence against the optimizer it restores
    "complex momentum": (lambda run: rewrite(run / "checkpoints/epoch-001.npz", optimizer_arrays_as(np.complex64)),
                         "epoch-001.npz: does not fit model 'lenet5': optimizer array 'optim/0.weight/momentum_buffer' "
                         "holds complex64, not real floating-point numbers"),
    "bool momentum": (lambda run: rewrite(run / "checkpoints/epoch-001.npz", optimizer_arrays_as(bool)),
                      "optimizer array 'optim/0.weight/momentum_buffer' holds bool, not real floating-point"),
    "structured momentum": (lambda run: rewrite(run / "checkpoints/epoch-001.npz",
                                                lambda a: a.update({k: np.zeros(v.shape, STRUCTURED) for k, v in
                                                                    a.items() if k.startswith("optim/")})),
                            "optimizer array 'optim/0.weight/momentum_buffer' holds [('a', '<f4')], not real"),
    "every optimizer array removed": (
        lambda run: rewrite(run / "checkpoints/epoch-001.npz",
                            lambda a: [a.pop(k) for k in [k for k in a if k.startswith("optim/")]]),
        "epoch-001.npz: optimizer state does not fit: SGD.load_state_dict: missing state arrays "
        "['0.weight/momentum_buffer', '0.bias/momentum_buffer', '3.weight/momentum_buffer'] ... (10 of 10"),
    "complex weights": (lambda run: rewrite(run / "checkpoints/epoch-001.npz",
                                            lambda a: a.update({"model/3.weight": a["model/3.weight"] + 1j})),
                        "epoch-001.npz: does not fit model 'lenet5': 'model/3.weight' holds complex64, the model's "
                        "is float32"),
    "optimizer step negative": (lambda run: rewrite(run / "checkpoints/epoch-001.npz",
                                                    change_meta=lambda m: m["optimizer"].update(step=-1)),
                                "epoch-001.npz: field 'header.optimizer.step': must lie in [0, ∞], got -1"),
    # config.json and the checkpoint header cross-checked: model, optimizer, options, data
    "config.json names another model of the same shapes": (
        lambda run: edit_config(run, model="lenet5-classic"),
        "epoch-001.npz is not a checkpoint of the run", "config.json describes: its model is 'lenet5', the run's is "
                                                        "'lenet5-classic'"),
    "config.json says adam": (lambda run: edit_config(run, optimizer="adam"),
                              "its optimizer is 'SGD', the run's is 'Adam'"),
    "config.json says nesterov": (lambda run: edit_config(run, optimizer="nesterov"),
                                  "its optimizer's nesterov is False, the run's is True"),
    "config.json's momentum": (lambda run: edit_config(run, momentum=0.5),
                               "its optimizer's momentum is 0.9, the run's is 0.5"),
    "config.json's batch size": (lambda run: edit_config(run, batch_size=8),
                                 "its option 'batch_size' is 16, the run's is 8"),
    "data of other classes": (lambda run: edit_config(run, data=str(shutil.copytree(
        json.loads((run / "config.json").read_text())["data"], run.parent / "fashion-data"))),
        "its data's classes is ['0', '1', '2',", "the run's is ['T-shirt/top', 'Trouser',"),
    # a zip of more members than the model and optimizer could have: refused before any is opened
    "5,000 extra members": (lambda run: add_members(run / "checkpoints/epoch-001.npz", 5000),
                            "epoch-001.npz: holds 5,021 members, more than the 41 a checkpoint of this model can "
                            "have; refusing to read them"),
    # names bounded by the schema before anything searches them
    "a model name of 900,000 characters": (lambda run: edit_config(run, model="a" * 900_000),
                                           "config.json: field 'model': must have at most 256 characters, "
                                           "got 900,000"),
}


def edit_config(run, **changes):
    path = run / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_a_checkpoint_that_does_not_hold_this_run_is_refused_on_resume(run, capsys, case):
    damage, *fragments = RESUME_CASES[case]
    damage(run)
    before = snapshot(run.parent)
    fails_cleanly(capsys, ["train", "--resume", "--out", run, "--epochs", "2", "--no-progress"], *fragments)
    assert snapshot(run.parent) == before


def test_the_unchanged_run_resumes(run, capsys):
    """The cases above fail for what they change, not for the checks: the same run resumes."""
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert (run / "checkpoints" / "epoch-002.npz").exists()


def test_a_header_model_name_of_4_million_characters_is_refused_within_a_memory_limit(trained, tmp_path):
    """Searched for a close model name (difflib) and printed, 4 million characters (16 MB, the most a header
    holds) would take a gigabyte: the schema refuses the name first."""
    bad = tmp_path / "bad.npz"
    shutil.copy(trained / "run" / "best.npz", bad)
    rewrite(bad, change_meta=lambda m: m["model"].update(name="a" * 4_000_000))

    def limit_memory():
        vm = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30),) * 2)     # the interpreter and NumPy, plus 1 GiB
    result = subprocess.run([sys.executable, "-m", "juanji.cli", "eval", str(bad)], capture_output=True, text=True,
                            preexec_fn=limit_memory, timeout=300,
                            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    one_line_exit_2(result, "bad.npz: field 'header.model.name': must have at most 256 characters, got 4,000,000")


# -- a run's config: what the Trainer writes into config.json reads back ----------------------------------
def test_a_non_finite_learning_rate_is_refused_before_anything_is_written(tmp_path):
    """A config.json holding lr=inf could never be read back: the Trainer refuses the config it cannot save."""
    data = idx_folder(tmp_path / "data")
    with pytest.raises(SchemaError, match="TrainConfig: field 'lr': must be finite, got inf"):
        Trainer(TrainConfig(data=str(data), lr=float("inf"), out=str(tmp_path / "run")), progress=False)
    assert not (tmp_path / "run").exists()


# -- Numba's cache --------------------------------------------------------------------------------------
RUN_A_KERNEL = ("import numpy as np; from juanji.functional.compiled import activation; "
                "print(activation.relu(np.array([-1.0, 2.0], np.float32)))")


@pytest.fixture
def mounts():
    mounted = []
    yield mounted
    for path in reversed(mounted):
        subprocess.run(["umount", str(path)], check=True)


def run_a_kernel(cache_home, preexec_fn=None):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    return subprocess.run([sys.executable, "-c", RUN_A_KERNEL], env={**env, "XDG_CACHE_HOME": str(cache_home)},
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec_fn)


@pytest.fixture(scope="module")
def written_cache(tmp_path_factory):
    """A cache home holding the compiled kernel's cache files, written by a first process."""
    pytest.importorskip("numba", reason="pip install 'juanji[fast]'")
    home = tmp_path_factory.mktemp("numba") / "cache"
    assert run_a_kernel(home).returncode == 0
    return home


def garble(cache_home, suffix, content):
    files = [p for p in Path(cache_home).rglob(f"*{suffix}")]
    assert files
    for path in files:
        path.write_bytes(content)


@pytest.mark.parametrize("failure", ["full", "read-only", "garbled index", "empty index", "garbled data"])
def test_a_numba_cache_that_fails_costs_a_compilation_and_a_warning_naming_it(tmp_path, mounts, written_cache,
                                                                           failure):
    home, preexec_fn = tmp_path / "cache", None
    folder = home / "juanji" / "numba"
    if failure in ("full", "read-only") and mount_tmpfs(home):
        mounts.append(home)
        folder.mkdir(parents=True, mode=0o700)
        if failure == "full":
            with open(home / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
                while True:                    # until the disk is full
                    f.write(bytes(4096))
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
    elif failure == "full":
        preexec_fn = no_file_may_grow          # mounting not permitted: EFBIG instead of ENOSPC
    elif failure == "read-only":
        folder.mkdir(parents=True, mode=0o700)
        folder.chmod(0o500)                    # (as root, only a read-only mount stops writes)
    else:
        shutil.copytree(written_cache, home)                        # a cache written, then damaged
        garble(home, *{"garbled index": (".nbi", b"\x0bnot a pickle"), "empty index": (".nbi", b""),
                       "garbled data": (".nbc", os.urandom(100))}[failure])
    result = run_a_kernel(home, preexec_fn)
    assert result.returncode == 0 and result.stdout.split() == ["[0.", "2.]"], result.stderr
    assert "RuntimeWarning: Numba's cache " in result.stderr and str(home) in result.stderr, result.stderr
    assert "juanji compiles without it" in result.stderr and "Traceback" not in result.stderr, result.stderr
