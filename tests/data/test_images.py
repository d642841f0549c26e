"""load_image / load_images on real files written with Pillow: formats, channels, resizing, EXIF, bad files."""
import io

import numpy as np
import pytest
from PIL import Image

from juanji.data.images import ImageError, load_image, load_images

GRADIENT = (np.arange(12 * 16).reshape(12, 16) * 255 // (12 * 16 - 1)).astype(np.uint8)   # 12 rows × 16 columns


@pytest.mark.parametrize("suffix", ["png", "bmp", "gif"])
def test_lossless_formats_give_the_pixels_divided_by_255(tmp_path, suffix):
    path = tmp_path / f"g.{suffix}"
    Image.fromarray(GRADIENT).save(path)
    image = load_image(path)
    assert image.shape == (1, 12, 16) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0], GRADIENT / np.float32(255))


def test_jpeg_is_close_to_the_pixels(tmp_path):
    path = tmp_path / "g.jpg"
    Image.fromarray(GRADIENT).save(path, quality=95)
    np.testing.assert_allclose(load_image(path)[0], GRADIENT / 255, atol=0.03)


def test_gif_gives_its_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.fromarray(np.full((8, 8), value, np.uint8)) for value in (200, 30)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(path).n_frames == 2
    np.testing.assert_allclose(load_image(path), 200 / 255)


def test_rgb_to_gray_uses_luma_and_gray_to_rgb_repeats(tmp_path):
    red = tmp_path / "red.png"
    Image.new("RGB", (4, 3), (255, 0, 0)).save(red)
    assert load_image(red, channels=1).shape == (1, 3, 4)
    np.testing.assert_allclose(load_image(red, channels=1), round(0.299 * 255) / 255)
    np.testing.assert_array_equal(load_image(red, channels=3)[:, 0, 0], [1, 0, 0])
    gray = tmp_path / "gray.png"
    Image.fromarray(GRADIENT).save(gray)
    rgb = load_image(gray, channels=3)
    assert rgb.shape == (3, 12, 16)
    for channel in rgb:
        np.testing.assert_array_equal(channel, GRADIENT / np.float32(255))


def test_resize_to_an_exact_size_or_shorter_side_and_centre_crop(tmp_path):
    pixels = np.zeros((30, 60), np.uint8)
    pixels[:, 15:45] = 255                      # a white centre square, black bands left and right
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    stretched = load_image(path, size=(10, 20))
    assert stretched.shape == (1, 10, 20)
    assert stretched[0, :, :4].max() < 0.1 and stretched[0, :, 7:13].min() > 0.9
    cropped = load_image(path, size=10, crop=True)
    assert cropped.shape == (1, 10, 10) and cropped.min() > 0.8     # only the centre square is left
    tall = load_image(path, size=(20, 10), crop=True)
    assert tall.shape == (1, 20, 10) and tall.min() > 0.8


def test_mean_and_std_normalise_each_channel(tmp_path):
    path = tmp_path / "c.png"
    Image.new("RGB", (2, 2), (255, 51, 0)).save(path)
    image = load_image(path, channels=3, mean=[0.5, 0.2, 0.0], std=[0.5, 0.1, 2.0])
    np.testing.assert_allclose(image[:, 0, 0], [1.0, 0.0, 0.0], atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((10, 20), np.uint8)
    pixels[:, :10] = 255                        # stored: 10 rows × 20 columns, left half white
    exif = Image.Exif()
    exif[0x0112] = 6                            # orientation 6: display rotated 90° clockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    with Image.open(path) as raw:
        assert raw.size == (20, 10) and raw.getexif()[0x0112] == 6
    image = load_image(path)
    assert image.shape == (1, 20, 10)           # upright: tall
    assert image[0, :9].min() > 0.9 and image[0, 11:].max() < 0.1   # the white half is now on top


def test_load_images_stacks_a_batch(tmp_path):
    paths = []
    for i, size in enumerate([(8, 6), (16, 12)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("L", size, 100 * i).save(paths[-1])
    batch = load_images(paths, size=(5, 7))
    assert batch.shape == (2, 1, 5, 7) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[1], 100 / 255, atol=1e-6)
    with pytest.raises(ImageError, match=r"^1.png: is 12×16 pixels but 0.png is 6×8"):
        load_images(paths)


def _png_bytes():
    buffer = io.BytesIO()
    Image.fromarray(GRADIENT).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes():
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"hello, not an image", "not an image file"),
    (_png_bytes()[:60], "truncated or corrupt"),
    (_jpeg_bytes()[:600], "truncated or corrupt"),
], ids=["empty", "text", "truncated-png", "truncated-jpeg"])
def test_bad_files_raise_image_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"^bad.png: {message}") as error:
        load_image(path)
    assert isinstance(error.value, ValueError) and error.value.path == str(path)


def test_missing_file_and_bad_channel_count(tmp_path):
    with pytest.raises(ImageError, match="nothing.png: no such image file"):
        load_image(tmp_path / "nothing.png")
    with pytest.raises(ValueError, match="channels must be 1"):
        load_image(tmp_path / "nothing.png", channels=2)
