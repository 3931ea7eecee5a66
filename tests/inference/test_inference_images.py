"""Upload -> RGB -> tensor, checked against torchvision's numbers and an independent torch path."""

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from app.inference.errors import ImageRejected
from app.inference.images import crop_box, decode, preprocess, resized_size
from app.inference.labels import labels
from app.repository.manifest import Preprocess

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "torchvision"
TRANSFORM = json.loads((GOLDEN / "alexnet.json").read_text())["transforms"]
STEPS_224 = Preprocess(
    resize=TRANSFORM["resize_size"][0],
    crop=TRANSFORM["crop_size"][0],
    interpolation="bilinear",
    antialias=TRANSFORM["antialias"],
    mean=tuple(TRANSFORM["mean"]),
    std=tuple(TRANSFORM["std"]),
)
STEPS_227 = STEPS_224.model_copy(update={"crop": 227})
MAX_PIXELS = 50_000_000
ONE_LEVEL = 1 / 255 / min(TRANSFORM["std"])  # one uint8 step, after normalizing


def test_the_golden_transform_is_torchvisions_imagenet_one() -> None:
    assert TRANSFORM["interpolation"] == "BILINEAR"
    assert (STEPS_224.resize, STEPS_224.crop, STEPS_224.antialias) == (256, 224, True)


def torch_reference(image: Image.Image, steps: Preprocess) -> np.ndarray:
    """torchvision's tensor path, written out with torch: antialiased bilinear, crop, normalize."""
    pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float()
    height, width = image.height, image.width
    if width <= height:
        size = (int(steps.resize * height / width), steps.resize)
    else:
        size = (steps.resize, int(steps.resize * width / height))
    resized = torch.nn.functional.interpolate(
        pixels, size=size, mode="bilinear", antialias=True, align_corners=False
    )
    resized = resized.round().clamp(0, 255)  # a uint8 image again, as PIL's result is
    top = round((size[0] - steps.crop) / 2.0)
    left = round((size[1] - steps.crop) / 2.0)
    cropped = resized[:, :, top : top + steps.crop, left : left + steps.crop] / 255
    mean = torch.tensor(steps.mean).view(1, 3, 1, 1)
    std = torch.tensor(steps.std).view(1, 3, 1, 1)
    return ((cropped - mean) / std).numpy()


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (500, 375), (1024, 683), (301, 257)])
@pytest.mark.parametrize("steps", [STEPS_224, STEPS_227], ids=["224", "227"])
def test_preprocessing_matches_an_independent_torch_computation(
    images: Any, size: tuple[int, int], steps: Preprocess
) -> None:
    image = images.photo_like(*size)
    ours = preprocess(image, steps, MAX_PIXELS)
    reference = torch_reference(image, steps)
    assert ours.shape == reference.shape == (1, 3, steps.crop, steps.crop)
    assert ours.dtype == np.float32
    difference = np.abs(ours - reference)
    # PIL resamples in fixed point, torch in float: at most a level or two apart, rarely that.
    assert difference.max() <= 2.01 * ONE_LEVEL
    assert difference.mean() <= 0.1 * ONE_LEVEL


def test_without_a_resize_the_crop_and_normalization_are_exact(images: Any) -> None:
    image = images.photo_like(301, 256)  # shorter side is already 256
    pixels = np.asarray(image).astype(np.float32)
    top, left = round((256 - 224) / 2), round((301 - 224) / 2)  # 16 and 38 (38.5 rounds to even)
    crop = pixels[top : top + 224, left : left + 224] / np.float32(255)
    mean = np.asarray(TRANSFORM["mean"], dtype=np.float32)
    std = np.asarray(TRANSFORM["std"], dtype=np.float32)
    expected = ((crop - mean) / std).transpose(2, 0, 1)[None]
    np.testing.assert_array_equal(preprocess(image, STEPS_224, MAX_PIXELS), expected)


def test_a_phone_photo_decoded_at_one_eighth_scale_matches_the_full_decode(images: Any) -> None:
    """A 12 Mpx JPEG is drafted (decoded at 1/8 scale, 504 x 378) before the transform: its
    tensor is on average under half a uint8 level from the full-size decode's; the DCT's 8x8
    averages and PIL's bilinear filter differ most on a hard edge (the disc's), by 9 levels."""
    photo = np.asarray(images.photo_like(4032, 3024)).astype(np.int16)
    grain = np.random.default_rng(0).integers(-12, 13, photo.shape)  # sensor noise, detail
    data = images.encode(Image.fromarray(np.clip(photo + grain, 0, 255).astype(np.uint8)), "JPEG")
    drafted = decode(data, MAX_PIXELS)
    assert drafted.size == (504, 378)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    difference = np.abs(
        preprocess(drafted, STEPS_224, MAX_PIXELS) - preprocess(full, STEPS_224, MAX_PIXELS)
    )
    assert difference.mean() <= 0.5 * ONE_LEVEL
    assert np.quantile(difference, 0.999) <= 4.01 * ONE_LEVEL
    assert difference.max() <= 10.01 * ONE_LEVEL


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((640, 480), (341, 256)),
        ((480, 640), (256, 341)),
        ((256, 256), (256, 256)),
        ((1000, 257), (996, 256)),
        ((227, 227), (256, 256)),
    ],
)
def test_the_shorter_side_becomes_256_as_torchvision_computes_it(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert resized_size(*size, 256) == expected


def test_center_crop_offsets_round_like_torchvision() -> None:
    assert crop_box(341, 256, 224) == (58, 16, 282, 240)  # (341 - 224) / 2 = 58.5 -> 58
    assert crop_box(256, 343, 227) == (14, 58, 241, 285)  # 14.5 -> 14, 58.0 -> 58


def test_an_rgba_png_is_composited_over_white(images: Any) -> None:
    rgba = Image.new("RGBA", (4, 2), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    rgba.putpixel((2, 0), (0, 0, 0, 128))
    rgb = decode(images.encode(rgba, "PNG"), MAX_PIXELS)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (255, 255, 255)  # transparent black reads as white
    assert rgb.getpixel((1, 0)) == (255, 0, 0)
    assert rgb.getpixel((2, 0)) == (127, 127, 127)  # half black over white


def test_a_palette_gif_with_transparency_is_composited_over_white(images: Any) -> None:
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 10, 200, 30])
    palette.putpixel((1, 0), 1)
    data = images.encode(palette, "GIF", transparency=0)
    rgb = decode(data, MAX_PIXELS)
    assert [rgb.getpixel((x, 0)) for x in range(2)] == [(255, 255, 255), (10, 200, 30)]


def test_a_grayscale_jpeg_becomes_three_equal_channels(images: Any) -> None:
    gray = images.photo_like().convert("L")
    rgb = np.asarray(decode(images.encode(gray, "PNG"), MAX_PIXELS))
    np.testing.assert_array_equal(rgb[..., 0], np.asarray(gray))
    assert (rgb[..., 0] == rgb[..., 1]).all()
    assert (rgb[..., 1] == rgb[..., 2]).all()


def test_a_cmyk_jpeg_keeps_its_colours(images: Any) -> None:
    colours = [(220, 30, 30), (30, 200, 40), (20, 40, 230), (240, 240, 240)]
    strip = Image.new("RGB", (4 * 16, 16))
    for i, colour in enumerate(colours):
        strip.paste(colour, (16 * i, 0, 16 * (i + 1), 16))
    data = images.encode(strip.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    rgb = decode(data, MAX_PIXELS)
    for i, colour in enumerate(colours):
        centre = np.asarray(rgb.getpixel((16 * i + 8, 8)), dtype=int)
        assert np.abs(centre - colour).max() <= 12, (colour, centre)


def test_a_16_bit_grayscale_png_keeps_its_high_byte() -> None:
    values = np.arange(32 * 8, dtype=np.uint16).reshape(8, 32) * 257  # 0 .. 65535
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode.startswith("I")
    rgb = np.asarray(decode(buffer.getvalue(), MAX_PIXELS))
    np.testing.assert_array_equal(rgb[..., 1], (values >> 8).astype(np.uint8))


def png_16_bit_rgb(pixels: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot save one)."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_16_bit_rgb_png_keeps_its_high_byte() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 65536, size=(6, 5, 3), dtype=np.uint16)
    rgb = np.asarray(decode(png_16_bit_rgb(pixels), MAX_PIXELS))
    np.testing.assert_array_equal(rgb, (pixels >> 8).astype(np.uint8))


def test_exif_orientation_is_applied(images: Any) -> None:
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    data = images.encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    upright = decode(data, MAX_PIXELS)
    assert upright.size == (20, 40)
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert top[0] > 200
    assert top[2] < 60
    assert bottom[2] > 200
    assert bottom[0] < 60


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"", "empty", 422),
        (b"certainly not an image", "unsupported_format", 415),
        (b"%PDF-1.7\n" + b"0" * 100, "unsupported_format", 415),
    ],
)
def test_what_is_not_an_image_is_rejected(data: bytes, code: str, status: int) -> None:
    with pytest.raises(ImageRejected) as caught:
        decode(data, MAX_PIXELS)
    assert (caught.value.code, caught.value.http_status) == (code, status)


def test_a_truncated_jpeg_is_undecodable(images: Any) -> None:
    data = images.encode(images.photo_like(), "JPEG")
    with pytest.raises(ImageRejected) as caught:
        decode(data[: len(data) // 2], MAX_PIXELS)
    assert (caught.value.code, caught.value.http_status) == ("undecodable", 422)


def test_too_many_pixels_are_refused_before_decoding(images: Any) -> None:
    data = images.encode(images.photo_like(320, 240), "PNG")
    with pytest.raises(ImageRejected) as caught:
        decode(data, max_pixels=320 * 240 - 1)
    assert (caught.value.code, caught.value.http_status) == ("too_large", 413)
    assert decode(data, max_pixels=320 * 240).size == (320, 240)


def test_a_strip_too_elongated_to_resize_is_refused() -> None:
    with pytest.raises(ImageRejected) as caught:
        preprocess(Image.new("RGB", (4000, 1)), STEPS_224, max_pixels=1_000_000)
    assert caught.value.code == "too_large"


def test_the_labels_ship_in_the_package_and_are_torchvisions() -> None:
    golden = json.loads((GOLDEN / "imagenet_categories.json").read_text())["categories"]
    assert list(labels()) == golden
    assert len(labels()) == 1000
    assert labels()[0] == "tench"
    assert labels()[999] == "toilet tissue"
