"""Checkpoints edited for the tests that must refuse them: their arrays, their header or their zip members."""
import json
import zipfile

import numpy as np


def checkpoint_arrays(path) -> dict:
    """Every member of the .npz at ``path``, the JSON header ``__meta__`` included."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def rewrite(path, change_arrays=None, change_meta=None, to=None):
    """Rewrite the checkpoint at ``path`` (into ``to`` where given) with its arrays ({"model/...", "optim/..."})
    or its header changed in place by the functions given."""
    arrays = checkpoint_arrays(path)
    meta = json.loads(str(arrays.pop("__meta__")))
    if change_arrays:
        change_arrays(arrays)
    if change_meta:
        change_meta(meta)
    np.savez(to or path, __meta__=np.array(json.dumps(meta)), **arrays)


def add_members(path, count):
    """``count`` empty members ``optim/extraK.npy`` appended to the checkpoint's zip (each refused if opened)."""
    with zipfile.ZipFile(path, "a") as archive:
        for i in range(count):
            archive.writestr(f"optim/extra{i}.npy", b"")
