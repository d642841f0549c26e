"""prepare_photo on Fashion-MNIST test images turned into "photos": dark on white, four times larger, off
centre, with sensor noise — prepared, they come back close to the originals and a trained LeNet-5 reads
them as it reads the originals; unprepared, it does not."""
import numpy as np
import pytest
from PIL import Image

from juanji.data import load_mnist
from juanji.data.photo import background_level, is_light_background, prepare_photo


def photo_of(image, scale=4, pad=((40, 20), (10, 60)), noise=0.03, seed=0):
    """A Fashion-MNIST image (28, 28) as a dark object on a white table: (28·scale + pads) pixels."""
    big = np.asarray(Image.fromarray(1 - image, mode="F").resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR))
    big = np.pad(big, pad, constant_values=1.0) + np.random.default_rng(seed).normal(0, noise, (
        28 * scale + sum(pad[0]), 28 * scale + sum(pad[1])))
    return np.clip(big, 0, 1).astype(np.float32)


def resized(photo):
    """What reading the photo without preparation gives: the whole picture squeezed to 28×28."""
    return np.asarray(Image.fromarray(photo, mode="F").resize((28, 28), Image.Resampling.BILINEAR))[None]


@pytest.fixture(scope="module")
def test_images():
    return load_mnist(train=False, limit=300)


def test_background_is_read_from_the_border():
    dark_on_light = np.full((40, 30), 0.9, np.float32)
    dark_on_light[10:30, 8:22] = 0.1
    assert background_level(dark_on_light) == pytest.approx(0.9)
    assert is_light_background(dark_on_light) and not is_light_background(1 - dark_on_light)
    assert is_light_background(dark_on_light[None])          # (1, H, W) as load_image gives


def test_a_dark_object_on_white_comes_back_like_the_original(test_images):
    originals = test_images.images[:, 0]
    prepared = np.stack([prepare_photo(photo_of(x, seed=i))[0] for i, x in enumerate(originals)])
    plain = np.stack([resized(photo_of(x, seed=i))[0] for i, x in enumerate(originals)])
    assert prepared.shape == originals.shape and prepared.dtype == np.float32
    error = np.abs(prepared - originals).mean(axis=(1, 2))
    # enlarging ×4 and shrinking back alone blurs the image: the preparation adds little to that
    assert error.mean() < 0.07 and error.max() < 0.2, (error.mean(), error.max())
    assert np.abs(plain - originals).mean() > 0.6


def test_an_image_already_like_fashion_mnist_stays_close(test_images):
    images = test_images.images
    assert not any(is_light_background(image) for image in images)
    again = np.stack([prepare_photo(image) for image in images])
    assert np.abs(again - images).mean() < 0.04          # not 0: faint edge rows may be cut
    image = images[0]
    forced = prepare_photo(image, invert=True, center=False)      # forced: its negative, light background
    np.testing.assert_allclose(forced, prepare_photo(1 - image, invert=False, center=False))
    assert is_light_background(forced)


def test_centring_puts_the_object_in_the_middle_filling_the_longer_side():
    picture = np.ones((60, 100), np.float32)
    picture[5:25, 70:90] = 0.0                  # a dark 20×20 square near the top right corner
    out = prepare_photo(picture, size=20)[0]
    np.testing.assert_allclose(out, 1.0, atol=1e-6)         # the square fills the whole output
    picture[5:15, 70:90] = 1.0                  # now 10 rows × 20 columns: centred, rows 5..14 of 20
    out = prepare_photo(picture, size=20)[0]
    assert out[5:15].min() > 0.99 and out[:4].max() < 0.01 and out[16:].max() < 0.01


def test_without_centring_the_whole_photo_is_resized():
    picture = np.zeros((56, 56), np.float32)
    picture[:28, :28] = 1.0                     # light quarter on black: not inverted, not moved
    out = prepare_photo(picture, center=False)[0]
    assert out[:13, :13].min() > 0.99 and out[15:, 15:].max() < 0.01


def test_the_photo_given_is_not_changed():
    picture = np.full((30, 30), 0.8, np.float32)
    picture[10:20, 10:20] = 0.2
    before = picture.copy()
    prepare_photo(picture)
    np.testing.assert_array_equal(picture, before)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 3, 4, 5)), "one gray image"), (np.zeros((3, 8, 8)), "one gray image"),
    (np.zeros((1, 8)), "one gray image"), (np.full((8, 8), np.nan), "NaN")])
def test_bad_photos_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        prepare_photo(bad)


@pytest.mark.parametrize("options, message", [({"size": 0}, "size"), ({"size": 2.5}, "size"),
                                              ({"invert": "auto"}, "invert")])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        prepare_photo(np.zeros((8, 8), np.float32), **options)


@pytest.mark.slow
def test_a_trained_lenet_reads_the_prepared_photos_like_the_originals(test_images, tmp_path):
    from juanji import checkpoint
    from juanji.cli import main
    from juanji.data import Normalize
    assert main(["train", "--limit", "5000", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    state = checkpoint.load(str(tmp_path / "run" / "best.npz"))
    model, normalize = checkpoint.restore_model(state).eval(), Normalize(*state.meta["data"]["normalization"])
    photos = [photo_of(x[0], seed=i) for i, x in enumerate(test_images.images)]

    def predict(images):
        return model(normalize(np.stack(images).astype(np.float32))).argmax(axis=1)

    original = predict(list(test_images.images))
    prepared = predict([prepare_photo(p) for p in photos])
    plain = predict([resized(p) for p in photos])
    labels = test_images.labels
    # prepared photos get nearly the originals' predictions, unprepared ones hardly any
    assert (prepared == original).mean() > 0.85
    assert (prepared == labels).mean() > (original == labels).mean() - 0.05
    assert (plain == original).mean() < 0.3 and (plain == labels).mean() < 0.3
