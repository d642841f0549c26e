"""Transforms: Normalize per channel, RandomCrop windows of the padded image, RandomHorizontalFlip mirrors, Compose;
the random ones draw per sample (SampleDraws), so a sample's result does not depend on its batch."""
import numpy as np
import pytest

from juanji.data.draws import SampleDraws
from juanji.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip


def draws(n, seed=0, epoch=0):
    """The draws of samples 0..n-1."""
    return SampleDraws(seed, epoch, np.arange(n))


def distinct_pixel_batch(n, channels=2, size=8):
    """(n, channels, size, size) float32 batch whose every pixel value is different and nonzero."""
    return np.arange(1, n * channels * size * size + 1, dtype=np.float32).reshape(n, channels, size, size)


def test_normalize_per_channel():
    rng = np.random.default_rng(0)
    batch = (rng.standard_normal((64, 3, 5, 5)) * [[[2.0]], [[5.0]], [[0.5]]] + [[[1.0]], [[-3.0]], [[10.0]]])
    batch = batch.astype(np.float32)
    mean, std = batch.mean(axis=(0, 2, 3)), batch.std(axis=(0, 2, 3))
    original = batch.copy()
    out = Normalize(mean, std)(batch)
    assert out.dtype == np.float32 and out.shape == batch.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-5)
    np.testing.assert_allclose(out[:, 1], (batch[:, 1] - mean[1]) / std[1], rtol=1e-6)
    np.testing.assert_array_equal(batch, original)


def test_normalize_scalar_and_errors():
    batch = np.full((2, 1, 3, 3), 0.5, dtype=np.float32)
    np.testing.assert_allclose(Normalize(0.25, 0.5)(batch), 0.5)
    with pytest.raises(ValueError, match="2 values per statistic but the batch has 1 channels"):
        Normalize([0.1, 0.2], [1, 1])(batch)
    with pytest.raises(ValueError, match="positive"):
        Normalize(0, 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        Normalize(0, 1)(batch[0])


def find_offset(crop, padded):
    """All (top, left) where ``crop`` (C, h, w) equals a window of ``padded`` (C, H, W)."""
    h, w = crop.shape[1:]
    return [(top, left)
            for top in range(padded.shape[1] - h + 1) for left in range(padded.shape[2] - w + 1)
            if np.array_equal(padded[:, top:top + h, left:left + w], crop)]


def test_random_crop_takes_padded_windows_at_uniform_independent_offsets():
    batch = distinct_pixel_batch(500)
    original = batch.copy()
    out = RandomCrop(8, padding=2)(batch, draws(500, seed=1))
    assert out.shape == (500, 2, 8, 8) and out.dtype == np.float32
    np.testing.assert_array_equal(batch, original)

    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = []
    for crop, padded_image in zip(out, padded):
        matches = find_offset(crop, padded_image)
        assert len(matches) == 1  # pixels are distinct, so the window is unique
        offsets.append(matches[0])
    counts = np.zeros((5, 5), dtype=int)
    for top, left in offsets:
        counts[top, left] += 1
    assert counts.min() > 0  # every offset 0..4 × 0..4 occurs: 500 samples, 20 expected each
    assert counts.max() < 45


def test_random_crop_rectangular_without_padding():
    batch = distinct_pixel_batch(50, channels=1, size=6)
    out = RandomCrop((4, 3))(batch, draws(50, seed=2))
    assert out.shape == (50, 1, 4, 3)
    for crop, image in zip(out, batch):
        [(top, left)] = find_offset(crop, image)
        assert 0 <= top <= 2 and 0 <= left <= 3
    np.testing.assert_array_equal(RandomCrop(6)(batch, draws(50, seed=3)), batch)
    with pytest.raises(ValueError, match="cannot crop 9×9"):
        RandomCrop(9, padding=1)(batch, draws(50))


def test_random_crop_same_draws_same_result():
    batch = distinct_pixel_batch(20)
    crop = RandomCrop(6, padding=1)
    np.testing.assert_array_equal(crop(batch, draws(20, seed=7)), crop(batch, draws(20, seed=7)))
    assert not np.array_equal(crop(batch, draws(20, seed=7)), crop(batch, draws(20, seed=7, epoch=1)))


def test_horizontal_flip_mirrors_exactly_the_selected_samples():
    batch = distinct_pixel_batch(2000, channels=3, size=4)
    original = batch.copy()
    out = RandomHorizontalFlip()(batch, draws(2000))
    np.testing.assert_array_equal(batch, original)
    flipped = np.array([np.array_equal(o, b[..., ::-1]) for o, b in zip(out, batch)])
    kept = np.array([np.array_equal(o, b) for o, b in zip(out, batch)])
    assert np.all(flipped ^ kept)  # each sample is exactly one of: unchanged, fully mirrored
    assert 0.45 < flipped.mean() < 0.55


def test_horizontal_flip_probability_extremes():
    batch = distinct_pixel_batch(10)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0)(batch, draws(10)), batch)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1)(batch, draws(10)), batch[..., ::-1])


def test_compose_applies_in_order_passing_the_draws_on():
    batch = distinct_pixel_batch(30)
    steps = [RandomCrop(6, padding=1), RandomHorizontalFlip(), Normalize([1, 2], [3, 4])]
    out = Compose(steps)(batch, draws(30, seed=5))
    shared = draws(30, seed=5)
    expected = batch
    for step in steps:
        expected = step(expected, shared)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("transform", [RandomCrop(6, padding=2), RandomHorizontalFlip(),
                                       Compose([RandomCrop(8, padding=2), RandomHorizontalFlip()])],
                         ids=["crop", "flip", "crop+flip"])
def test_a_sample_is_transformed_alike_in_any_batch(transform):
    """Sample i's result depends on (seed, epoch, i) alone: not on the batch's size, order or other samples."""
    images = distinct_pixel_batch(40)
    whole = transform(images, draws(40, seed=3, epoch=2))
    picked = np.array([31, 4, 17, 0, 39, 22])
    alone = transform(images[picked], SampleDraws(3, 2, picked))
    np.testing.assert_array_equal(alone, whole[picked])
    for i in (9, 30):
        np.testing.assert_array_equal(transform(images[i:i + 1], SampleDraws(3, 2, [i]))[0], whole[i])


def test_random_transforms_need_the_batch_draws():
    batch = distinct_pixel_batch(4)
    with pytest.raises(ValueError, match="RandomCrop draws from the batch's SampleDraws"):
        RandomCrop(6, padding=1)(batch, np.random.default_rng(0))
    with pytest.raises(ValueError, match="RandomHorizontalFlip: draws for 3 samples, but the batch has 4"):
        RandomHorizontalFlip()(batch, draws(3))
