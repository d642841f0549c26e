"""Every process of a data-parallel job must train the same thing: compare what each was started with,
before the first step (else the gradients of different models, data or schedules would be averaged)."""
from __future__ import annotations

import hashlib
import json

import numpy as np

from .. import __version__
from .comm import together

DIGEST_SAMPLES = 64         # samples spread over a data set whose bytes identify it (cheap for any size)


def data_identity(**datasets) -> dict:
    """``{"NAME data": "N samples, digest D"}`` for each data set given by keyword: D hashes its classes and
    DIGEST_SAMPLES (inputs, labels) spread evenly over it (a data set indexes with an array of indices)."""
    identity = {}
    for name, dataset in datasets.items():
        digest = hashlib.sha256(json.dumps(list(dataset.classes)).encode())
        picks = np.linspace(0, len(dataset) - 1, min(DIGEST_SAMPLES, len(dataset))).astype(np.int64)
        for array in dataset[picks]:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        identity[f"{name} data"] = f"{len(dataset)} samples, digest {digest.hexdigest()[:16]}"
    return identity


def check_agreement(comm, fields: dict) -> None:
    """ValueError on every process (so ``together`` lets rank 0 alone say it, and no process aborts) unless
    every process of ``comm`` has the same ``fields`` (name → JSON value: options, data identity), the
    juanji version and the timeout; the message names the first field that differs with each process's
    value, and the other differing fields.  Nothing when ``comm`` is None."""
    if comm is None:
        return
    fields = {"juanji version": __version__, **fields, "--timeout": comm.timeout}
    everyone = [json.loads(text) for text in comm.allgather_bytes(json.dumps(fields).encode())]
    together(comm, lambda: _refuse_differences(everyone))


def _refuse_differences(everyone: list[dict]) -> None:
    names = list(dict.fromkeys(name for fields in everyone for name in fields))
    differing = [name for name in names if len({_shown(fields.get(name)) for fields in everyone}) > 1]
    if not differing:
        return
    ranks_of: dict[str, list[int]] = {}
    for rank, fields in enumerate(everyone):
        ranks_of.setdefault(_shown(fields.get(differing[0])), []).append(rank)
    values = "; ".join(f"{value} on {_ranks(ranks)}" for value, ranks in ranks_of.items())
    also = f" (also differing: {', '.join(differing[1:])})" if len(differing) > 1 else ""
    raise ValueError(f"the processes were started differently: {differing[0]} differs: {values}{also}; every process "
                     f"of a data-parallel job needs the same options and data")


def _shown(value, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[:width - 1] + "…"


def _ranks(ranks: list[int], shown: int = 8) -> str:
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    listed = ", ".join(map(str, ranks[:shown]))
    return f"ranks {listed}" + (f" … ({len(ranks)} in all)" if len(ranks) > shown else "")
