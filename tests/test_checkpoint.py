"""Checkpoints: round trip, atomic replacement, and refusal of anything that is not a juanji checkpoint."""
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji import models, optim
from juanji.io import write_atomically


def trained_pair(seed=0):
    model = models.create("lenet5")
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    for _, _, grad in model.parameters():
        grad[...] = rng.standard_normal(grad.shape)
    optimizer.step()
    return model, optimizer


def test_round_trip_restores_model_and_optimizer(tmp_path):
    model, optimizer = trained_pair()
    path = tmp_path / "a.npz"
    ckpt.save(path, model, optimizer, epoch=3, note="hello")
    state = ckpt.load(path)
    assert state.meta["epoch"] == 3 and state.meta["note"] == "hello"
    assert state.meta["model"] == {"name": "lenet5", "config": {}}
    rebuilt = ckpt.restore_model(state)
    for (name, a, _), (_, b, _) in zip(model.parameters(), rebuilt.parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    fresh = optim.Adam(rebuilt.parameters(), lr=1e-3)
    ckpt.restore_optimizer(state, fresh)
    assert fresh.state_dict()["step"] == optimizer.state_dict()["step"]
    for key, value in optimizer.state_dict()["arrays"].items():
        np.testing.assert_array_equal(fresh.state_dict()["arrays"][key], value)


def test_file_is_a_plain_zip_of_npy_and_json_without_pickle(tmp_path):
    model, optimizer = trained_pair()
    path = tmp_path / "a.npz"
    ckpt.save(path, model, optimizer)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert "__meta__.npy" in names and "model/0.weight.npy" in names
    with np.load(path, allow_pickle=False) as archive:   # would raise if anything needed unpickling
        json.loads(str(archive["__meta__"]))


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path):
    model, optimizer = trained_pair()
    path = tmp_path / "a.npz"
    ckpt.save(path, model, optimizer, epoch=1)
    before = path.read_bytes()

    def disk_full(f):
        f.write(b"partial data")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, disk_full)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]          # no temporary file left behind
    assert ckpt.load(path).meta["epoch"] == 1


def test_saved_file_gets_umask_permissions(tmp_path):
    model, _ = trained_pair()
    ckpt.save(tmp_path / "a.npz", model)
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "a.npz").st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("content, problem", [
    (b"", "empty file"),
    (pickle.dumps({"weight": np.zeros(3)}), "not a zip archive"),
    (b"hello, this is text", "not a zip archive"),
])
def test_non_checkpoints_are_refused_by_name(tmp_path, content, problem):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ckpt.CheckpointError, match=f"model.npz: .*{problem}"):
        ckpt.load(path)


def test_truncated_checkpoint_is_refused(tmp_path):
    model, optimizer = trained_pair()
    path = tmp_path / "a.npz"
    ckpt.save(path, model, optimizer)
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(ckpt.CheckpointError, match="a.npz: truncated or corrupt"):
            ckpt.load(path)


def test_npz_holding_a_pickled_object_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.array([{"format": ckpt.FORMAT}], dtype=object))
    with pytest.raises(ckpt.CheckpointError, match="evil.npz: refusing to load"):
        ckpt.load(path)


def test_plain_npz_without_header_and_newer_version_are_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", weight=np.zeros(3))
    with pytest.raises(ckpt.CheckpointError, match="plain.npz: not a juanji checkpoint"):
        ckpt.load(tmp_path / "plain.npz")
    header = json.dumps({"format": ckpt.FORMAT, "version": ckpt.VERSION + 1})
    np.savez(tmp_path / "future.npz", __meta__=np.array(header))
    with pytest.raises(ckpt.CheckpointError, match="newer juanji"):
        ckpt.load(tmp_path / "future.npz")


def test_checkpoint_of_another_model_is_refused_without_changing_the_target(tmp_path):
    model, _ = trained_pair()
    path = tmp_path / "lenet.npz"
    ckpt.save(path, model)
    other = models.create("lenet5", num_classes=5)
    before = other.state_dict()
    with pytest.raises(ckpt.CheckpointError, match="lenet.npz: does not fit"):
        ckpt.restore_model(ckpt.load(path), other, "lenet.npz")
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        ckpt.load(tmp_path / "nothing.npz")
