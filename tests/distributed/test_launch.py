"""Started plainly juanji never imports mpi4py; under mpirun without mpi4py it stops with one line."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from juanji.distributed import check_shares, launched_rank, launched_size

from mpi_run import ROOT, environment, mpirun, needs_mpi


@pytest.mark.parametrize("variables, size, rank", [
    ({}, 1, 0),
    ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3"}, 4, 3),
    ({"PMI_SIZE": "2", "PMI_RANK": "1"}, 2, 1),
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5"}, 8, 5),
    ({"PMIX_RANK": "2"}, 0, 2),                      # PMIx alone: MPI itself must tell the size
    ({"SLURM_NTASKS": "4", "SLURM_PROCID": "0"}, 1, 0),  # a batch script's own process is not an srun step
])
def test_the_launcher_is_read_from_the_environment(monkeypatch, variables, size, rank):
    for name in ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK", "PMIX_RANK",
                 "MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID",
                 "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert (launched_size(), launched_rank()) == (size, rank)


def test_plain_training_does_not_import_mpi4py(tmp_path):
    script = ("import sys; from juanji.cli import main; "
              f"code = main(['train', '--limit', '64', '--epochs', '1', '--out', {str(tmp_path / 'run')!r}, "
              "'--no-progress']); assert code == 0; assert 'mpi4py' not in sys.modules, 'mpi4py imported'")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env=environment())
    assert run.returncode == 0, run.stderr
    assert "in 2 processes" not in run.stdout and (tmp_path / "run" / "best.npz").exists()


@needs_mpi
def test_mpirun_without_mpi4py_is_one_line_and_status_2(tmp_path):
    # sys.modules[name] = None is Python's own way to make `import name` fail as if it were not installed
    run = mpirun(2, "-c", "import sys; sys.modules['mpi4py'] = None; from juanji.cli import main; "
                          f"sys.exit(main(['train', '--limit', '64', '--out', {str(tmp_path / 'run')!r}]))",
                 timeout=60)
    ours = [line for line in run.stderr.splitlines() if line.startswith("juanji:")]
    assert ours == ["juanji: error: started by an MPI launcher, but mpi4py is not installed: "
                    "pip install 'juanji[mpi]'"], run.stderr
    assert run.returncode == 2 and not (tmp_path / "run").exists()


@needs_mpi
def test_threads_default_to_the_cores_divided_among_the_ranks(tmp_path):
    # each rank writes its own file: two ranks printing at once may interleave within a line
    run = mpirun(2, "-c", "import os, pathlib; from juanji import distributed; comm = distributed.init(); "
                          f"pathlib.Path({str(tmp_path)!r}, f'rank{{comm.rank}}').write_text("
                          "f'{comm.local_size} {comm.default_threads()} {os.cpu_count()}')", timeout=60)
    assert run.returncode == 0, run.stderr
    cores = os.cpu_count()
    for rank in (0, 1):
        numbers = [int(word) for word in (tmp_path / f"rank{rank}").read_text().split()]
        assert numbers == [2, max(1, cores // 2), cores]


def test_every_rank_needs_a_sample_of_every_batch():
    check_shares(1000, 64, 4, 4)            # 15 batches of 64, the last of 40
    with pytest.raises(ValueError, match="3 processes need at least 3 images in every batch, but with "
                                         "--batch-size 2 a batch of the 100 training images holds 2"):
        check_shares(100, 2, 3, 10)
    check_shares(65, 64, 2, 10)             # the epoch's last batch, 1 image: rank 0's share is empty, it joins
    check_shares(2, 64, 3, 10)
    with pytest.raises(ValueError, match="2 images in every batch with --sync-bn, .* holds 1;"):
        check_shares(65, 64, 2, 10, sync_bn=True)       # batch norm's statistics need every rank's forward
    with pytest.raises(ValueError, match="2 processes need at least 2 test images, got 1"):
        check_shares(64, 32, 2, 1)
