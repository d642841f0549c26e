"""Checkpoints: round trip, atomic replacement, and refusal of anything that is not a juanji checkpoint."""
import json
import os
import pickle
import re
import zipfile

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji import models, optim, schema
from juanji.io import write_atomically
from checkpoint_edits import add_members, rewrite


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


# -- every array checked against the model and optimizer it restores ----------------------------------------
@pytest.mark.parametrize("dtype", [np.complex64, np.bool_, np.int32, np.dtype([("a", "<f4")])],
                         ids=["complex", "bool", "int", "structured"])
def test_optimizer_arrays_that_are_not_real_numbers_are_refused_not_cast(tmp_path, dtype):
    """A cast would drop the imaginary parts, take True as a moment of 1.0 ...: refused, naming file and array."""
    model, optimizer = trained_pair()
    path = tmp_path / "a.npz"
    ckpt.save(path, model, optimizer)
    rewrite(path, lambda arrays: arrays.update({"optim/0.weight/exp_avg": np.zeros((6, 1, 5, 5), dtype)}))
    shown = np.dtype(dtype)
    with pytest.raises(ckpt.CheckpointError, match=re.escape(f"a.npz: does not fit model 'lenet5': optimizer array "
                                                             f"'optim/0.weight/exp_avg' holds {shown}, not real")):
        ckpt.load(path, models.create("lenet5"))
    fresh = optim.Adam(model.parameters(), lr=1e-3)
    with pytest.raises(ckpt.CheckpointError, match=re.escape(f"a.npz: optimizer state does not fit: Adam.load_state_"
                                                             f"dict: '0.weight/exp_avg' holds {shown}, not real")):
        ckpt.restore_optimizer(ckpt.load(path), fresh, "a.npz")          # loaded without its model: checked here
    assert fresh.step_count == 0 and not any(fresh.state.values())


def test_an_optimizer_state_without_its_arrays_is_refused_not_restarted_at_zero(tmp_path):
    model, optimizer = trained_pair()
    path = tmp_path / "a.npz"
    ckpt.save(path, model, optimizer)
    rewrite(path, lambda arrays: [arrays.pop(key) for key in [k for k in arrays if k.startswith("optim/")]])
    with pytest.raises(ckpt.CheckpointError, match=re.escape(
            "a.npz: optimizer state does not fit: Adam.load_state_dict: missing state arrays ['0.weight/exp_avg', "
            "'0.weight/exp_avg_sq', '0.bias/exp_avg'] ... (20 of 20: every parameter has them after the first step, "
            "and this is the state after step 1)")):
        ckpt.restore_optimizer(ckpt.load(path, model), optim.Adam(model.parameters()), "a.npz")


def test_model_arrays_of_another_kind_are_refused(tmp_path):
    model, _ = trained_pair()
    path = tmp_path / "a.npz"
    ckpt.save(path, model)
    rewrite(path, lambda arrays: arrays.update({"model/3.bias": arrays["model/3.bias"] > 0}))
    message = re.escape("a.npz: does not fit model 'lenet5': 'model/3.bias' holds bool, the model's is float32")
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.load(path, models.create("lenet5"))
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.restore_model(ckpt.load(path), source="a.npz")          # the model built from the header


def test_adam_with_amsgrad_of_a_larger_model_loads(tmp_path):
    """Three moments per parameter: the optimizer's arrays may be three times the model's, not twice."""
    model = models.create("vgg_small")
    optimizer = optim.Adam(model.parameters(), amsgrad=True)
    optimizer.step()
    ckpt.save(tmp_path / "a.npz", model, optimizer)
    state = ckpt.load(tmp_path / "a.npz", model)
    assert len(state.optimizer_arrays) == 3 * len(model.parameters())


@pytest.mark.parametrize("extra, with_model, fragment", [
    (5000, True, "a.npz: holds 5,031 members, more than the 41 a checkpoint of this model can have; refusing"),
    (5000, False, "a.npz: holds 5,031 members, more than the 4,096 a checkpoint can have; refusing to read them"),
])
def test_a_zip_of_more_members_than_a_checkpoint_can_have_is_refused_before_opening_them(tmp_path, extra,
                                                                                         with_model, fragment):
    model, optimizer = trained_pair()
    path = tmp_path / "a.npz"
    ckpt.save(path, model, optimizer)
    add_members(path, extra)                                    # each would be refused if opened: never opened
    with pytest.raises(ckpt.CheckpointError, match=re.escape(fragment)):
        ckpt.load(path, models.create("lenet5") if with_model else None)
    assert ckpt.most_members(models.create("densenet121")) <= schema.MAX_CHECKPOINT_MEMBERS


@pytest.mark.parametrize("change, fragment", [
    (lambda s: s["hyper"].update(betas=[0.9]), "hyperparameter betas must be 2 finite numbers, got [0.9]"),
    (lambda s: s["hyper"].update(amsgrad="yes"), "hyperparameter amsgrad must be true or false, got 'yes'"),
    (lambda s: s["hyper"].update(lr=-1.0), "hyperparameter lr must be a finite number >= 0, got -1.0"),
    (lambda s: s["hyper"].update(eps=float("inf")), "hyperparameter eps must be a finite number, got inf"),
    (lambda s: s.update(step="1"), "step must be an integer >= 0, got '1'"),
    (lambda s: s.update(step=0), "unexpected key '0.weight/exp_avg' (a state of step 0 holds no arrays)"),
])
def test_hyperparameters_and_step_from_a_checkpoint_are_checked_before_anything_changes(change, fragment):
    _, optimizer = trained_pair()
    state = optimizer.state_dict()
    change(state)
    target = optim.Adam(trained_pair(1)[0].parameters())
    with pytest.raises(ValueError, match=re.escape(f"Adam.load_state_dict: {fragment}")):
        target.load_state_dict(state)
    assert target.step_count == 0 and target.betas == (0.9, 0.999) and not any(target.state.values())
