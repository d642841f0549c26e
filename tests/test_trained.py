"""A trained model as a type: loaded from a run or a checkpoint file, its description read from the header
once, its inputs prepared and its test set evaluated as in training, one class-lookup rule."""
import json
import os

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji.runs import Run
from juanji.schema import TrainConfig
from juanji.train import Trainer
from juanji.trained import TrainedModel
from test_runs import idx_folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    config = TrainConfig(data=str(idx_folder(root / "data")), epochs=2, batch_size=16, out=str(root / "run"))
    Trainer(config, progress=False).fit()
    return Run(root / "run")


def test_loading_a_run_gives_its_best_epoch_and_what_it_was_trained_on(run):
    trained = TrainedModel.load(run.path)
    best = max(run.metrics(), key=lambda m: m["test_accuracy"])
    assert not trained.model.training and trained.epoch == best["epoch"]
    assert trained.checkpoint == run.best and trained.run_dir == run.path
    assert trained.classes == [str(d) for d in range(10)] and trained.input_shape == (1, 28, 28)
    assert trained.alphabet is None and not trained.is_text
    assert trained.config["data"] == run.config.data and trained.test_accuracy == best["test_accuracy"]
    mean, std = trained.normalization
    assert len(mean) == len(std) == 1 and std[0] > 0


def test_its_test_set_evaluates_to_the_accuracy_stored_at_training(run):
    trained = TrainedModel.load(run.path)
    test_set = trained.test_set()
    result = trained.evaluate(test_set)
    assert result["predictions"].shape == (32,)
    assert result["accuracy"] == pytest.approx(trained.test_accuracy, abs=1e-12)


def test_an_epoch_checkpoint_belongs_to_its_run(run):
    epoch, path = run.checkpoints()[0]
    trained = TrainedModel.load(path)
    assert trained.epoch == epoch and trained.run_dir == run.path


def test_normalize_is_the_training_sets_mean_and_std(run):
    trained = TrainedModel.load(run.path)
    pixels = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    (mean,), (std,) = trained.normalization
    expected = (pixels - np.float32(mean)) / np.float32(std)
    np.testing.assert_allclose(trained.normalize(pixels), expected, rtol=1e-6)
    np.testing.assert_allclose(trained.normalize(pixels[0]), expected[0], rtol=1e-6)
    assert trained.normalize(pixels).dtype == np.float32


def test_one_class_lookup_rule_name_then_case_then_number(run, tmp_path):
    trained = TrainedModel.load(run.path)
    named = TrainedModel(**{**trained.__dict__, "classes": ["T-shirt", "Trouser", "3", "Dress"]})
    assert named.class_index("Trouser") == 1
    assert named.class_index("trouser") == 1 and named.class_index("T-SHIRT") == 0
    assert named.class_index("3") == 2                 # a class named "3" wins over index 3
    assert named.class_index("1") == 1
    with pytest.raises(ValueError, match=r"unknown class 'Sandal' \(classes: T-shirt, Trouser, 3, Dress\)"):
        named.class_index("Sandal")
    with pytest.raises(ValueError, match="unknown class '4'"):
        named.class_index("4")


def test_a_header_without_an_input_shape_takes_the_models(run, tmp_path):
    state = ckpt.load(run.best)
    data = {k: v for k, v in state.meta["data"].items() if k != "input_shape"}
    meta = {k: v for k, v in state.meta.items() if k not in ("format", "version", "model", "optimizer", "data")}
    path = tmp_path / "no-shape.npz"
    ckpt.save(path, ckpt.restore_model(state), data=data, **meta)
    assert "input_shape" not in ckpt.read_meta(path)["data"]
    assert TrainedModel.load(path).input_shape == (1, 28, 28)


def test_a_folder_without_best_npz_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({}))
    with pytest.raises(FileNotFoundError, match="a folder without best.npz, not a juanji run"):
        TrainedModel.load(tmp_path)
    assert not os.path.exists(tmp_path / "best.npz")


def test_an_image_model_does_not_encode_words(run):
    with pytest.raises(ValueError, match="the model reads images, not words"):
        TrainedModel.load(run.path).encode(["boot"])
