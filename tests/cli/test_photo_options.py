"""``--invert`` and ``--center`` of ``juanji predict`` and the image pictures of ``juanji show``, on photos of
Fashion-MNIST test images made dark on white, four times larger and off centre; ``show curves RUN`` writes
into the run."""
import numpy as np
import pytest
from PIL import Image

from juanji.cli import main
from juanji.data import load_mnist
import dataclasses

from juanji.trained import TrainedModel

COUNT = 20


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("photo") / "run"
    assert main(["train", "--epochs", "1", "--limit", "5000", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """(test image (1, 28, 28), PNG of it dark on a white 200×160 table) for the first COUNT test images."""
    folder = tmp_path_factory.mktemp("photos")
    test = load_mnist(train=False, limit=COUNT)
    pairs = []
    for i, image in enumerate(test.images):
        pixels = (image[0] * 255).round().astype(np.uint8)
        table = Image.new("L", (200, 160), 255)
        table.paste(Image.fromarray(255 - pixels).resize((112, 112)), (70 - 3 * i, 20 + i))
        table.save(folder / f"{i}.png")
        pairs.append((image, folder / f"{i}.png"))
    return pairs


def test_auto_inverts_a_light_background_for_a_fashion_mnist_run(run_dir, photos):
    trained = TrainedModel.load(run_dir)
    _, path = photos[0]
    plain = trained.prepare(path, invert="no")[0]
    assert plain.mean() > 0.5                                   # white table
    np.testing.assert_allclose(trained.prepare(path)[0], 1 - plain)
    np.testing.assert_allclose(trained.prepare(path, invert="yes")[0], 1 - plain)
    light = dataclasses.replace(trained, normalization=([0.7], [0.3]))     # a run trained on light images
    np.testing.assert_allclose(light.prepare(path)[0], plain)


def test_center_gives_back_the_test_image_and_its_prediction(run_dir, photos):
    trained = TrainedModel.load(run_dir)
    model = trained.model
    originals = np.stack([image for image, _ in photos])
    centred = np.stack([trained.prepare(path, center=True)[0] for _, path in photos])
    assert np.abs(centred - originals).mean() < 0.1
    inputs = [np.stack([trained.prepare(path, center=center)[1] for _, path in photos])
              for center in (False, True)]
    reference = model(np.stack([normalized(trained, image) for image in originals])).argmax(1)
    inverted_only, prepared = (model(x).argmax(1) for x in inputs)
    assert (prepared == reference).mean() >= 0.85            # crop and invert only: far fewer agree
    assert (prepared == reference).mean() > (inverted_only == reference).mean()


def normalized(trained, image):
    """The model input of a test image itself: (x − mean) / std, written out here."""
    mean, std = (np.array(v, dtype=np.float32)[:, None, None] for v in trained.normalization)
    return (image - mean) / std


def test_center_refuses_models_that_are_not_gray_and_square(run_dir, photos):
    colour = dataclasses.replace(TrainedModel.load(run_dir), input_shape=(3, 28, 28))
    with pytest.raises(ValueError, match="grayscale model with square inputs"):
        colour.prepare(photos[0][1], center=True)


def test_predict_and_show_take_the_options(run_dir, photos, capsys):
    image, path = photos[0]
    assert main(["predict", str(run_dir), str(path), "--center", "--invert", "auto"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ")
    assert main(["show", "features", str(run_dir), str(path), "--center"]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / f"features-{path.stem}.png")
    with pytest.raises(SystemExit) as exit:
        main(["predict", str(run_dir), str(path), "--invert", "maybe"])
    assert exit.value.code == 2


def test_show_curves_of_one_run_writes_into_it(run_dir, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (run_dir / "curves.png").unlink()
    assert main(["show", "curves", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "curves.png")
    assert (run_dir / "curves.png").stat().st_size > 0 and not (tmp_path / "curves.png").exists()
