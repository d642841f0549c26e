"""Two ranks that talk over TCP alone, as ranks on two machines do: Open MPI's ob1 messaging with only the tcp
(and self) transports, on the loopback interface only, so shared memory (vader, sm) cannot carry a byte; the
float64 trajectory is still that of one process."""
from __future__ import annotations

import re

import numpy as np
import pytest

from equivalence import CASES
from mpi_run import environment, mpirun, needs_mpi
from test_equivalence import one_process

# mpirun --mca NAME VALUE, as the environment gives it (OMPI_MCA_NAME=VALUE); docs/distributed.md shows the
# same settings for two hosts, with their network interface in place of lo
TCP_ONLY = {"OMPI_MCA_pml": "ob1",                      # the PML that uses the BTLs below (UCX would not)
            "OMPI_MCA_btl": "tcp,self",                 # no vader/sm: no shared memory between the ranks
            "OMPI_MCA_btl_tcp_if_include": "lo",        # MPI's messages: the loopback interface only
            "OMPI_MCA_oob_tcp_if_include": "lo",        # and the launcher's own
            "OMPI_MCA_btl_base_verbose": "30"}          # says which transport carries what, checked below


@needs_mpi
@pytest.mark.slow
def test_two_ranks_over_tcp_on_loopback_follow_the_single_process_trajectory(tmp_path):
    run = mpirun(2, "tests/distributed/equivalence.py", str(tmp_path), timeout=120, env=environment(**TCP_ONLY))
    assert run.returncode == 0, run.stderr
    log = run.stdout + run.stderr
    # each rank sends to the other over tcp, connecting to 127.0.0.1 only
    assert len(re.findall(r"Using tcp btl for send to", log)) == 2, log[-3000:]
    assert not re.search(r"Using (vader|sm|ucx|ofi) btl", log), log[-3000:]
    peers = re.findall(r"attempting to connect\(\) to \S+ address (\S+) on port", log)
    assert peers and set(peers) == {"127.0.0.1"}, log[-3000:]
    for case in CASES:
        expected = one_process(case, 2)
        for rank in range(2):
            with np.load(tmp_path / f"{case}-rank{rank}.npz") as got:
                assert sorted(got.files) == sorted(expected), case
                for key, value in expected.items():
                    np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-12,
                                               err_msg=f"{case}, rank {rank} of 2 over TCP: {key}")
