"""Upload -> upright RGB image, and RGB image -> the tensor torchvision's ImageNet transform makes.

torchvision's ``ImageClassification`` transform on a PIL image is: resize the shorter side to 256
with PIL's bilinear filter (PIL always antialiases when it shrinks), center-crop with
``int(round((size - crop) / 2.0))`` offsets, divide by 255 and normalize, all in float32. This
module does the same steps with PIL and numpy, so published weights give the published answers.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from app.inference.errors import ImageRejected
from app.inference.manifest import Preprocess

FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
WHITE = (255, 255, 255, 255)
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


def decode(data: bytes, max_pixels: int) -> Image.Image:
    """The upload as an upright 8-bit RGB image, or ImageRejected saying why not."""
    if not data:
        raise ImageRejected("empty", "the upload is empty")
    image = _open(data, max_pixels)
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except READ_ERRORS as error:
        raise ImageRejected("undecodable", f"the image data is damaged: {error}") from None
    return to_rgb(image)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        names = ", ".join(FORMATS)
        raise ImageRejected(
            "unsupported_format", f"not an image in a known format ({names})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own bomb check fires inside open() when warnings are errors; same verdict.
        raise ImageRejected("too_large", f"more than {max_pixels} pixels") from None
    except READ_ERRORS as error:
        raise ImageRejected("undecodable", f"the image header is damaged: {error}") from None
    width, height = image.size
    if width * height > max_pixels:
        message = f"{width}x{height} is more than {max_pixels} pixels"
        raise ImageRejected("too_large", message)
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: alpha composited over white, 16-bit scaled, CMYK through its ICC profile."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_rgb(image)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        # A transparent pixel's colour is arbitrary (often black); white is what a page shows.
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")
    if image.mode == "CMYK" and image.info.get("icc_profile"):
        return _cmyk_with_profile(image)
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise ImageRejected(
            "unsupported_mode", f"cannot read {image.mode} images: {error}"
        ) from None


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's convert() would clip 0..65535 to 0..255, turning most pixels white; keep the high
    # byte instead, as torchvision's uint16 -> uint8 conversion does.
    values = np.asarray(image).astype(np.int64)
    high_byte = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
    return Image.fromarray(high_byte).convert("RGB")


def _cmyk_with_profile(image: Image.Image) -> Image.Image:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        converted = ImageCms.profileToProfile(
            image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError):
        return image.convert("RGB")  # a damaged profile: the plain conversion still gives colour
    if converted is None:  # only with inPlace=True, which is not used here
        raise ImageRejected("unsupported_mode", "the CMYK profile conversion gave no image")
    return converted


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """torchvision's size for resize(shorter): the shorter side becomes ``shorter`` exactly."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = shorter, int(shorter * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def crop_box(width: int, height: int, crop: int) -> tuple[int, int, int, int]:
    """torchvision's center_crop box (left, top, right, bottom)."""
    top = round((height - crop) / 2.0)
    left = round((width - crop) / 2.0)
    return left, top, left + crop, top + crop


def preprocess(image: Image.Image, steps: Preprocess, max_pixels: int) -> NDArray[np.float32]:
    """An RGB image as the (1, 3, crop, crop) float32 array torchvision's transform gives."""
    size = resized_size(image.width, image.height, steps.resize)
    if size[0] * size[1] > max_pixels:  # a 1 x 10000 strip would grow to 256 x 2560000
        message = f"{image.width}x{image.height} is too elongated to resize to {size[0]}x{size[1]}"
        raise ImageRejected("too_large", message)
    if size != image.size:  # torchvision skips the resize too when nothing changes
        image = image.resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(image.crop(crop_box(image.width, image.height, steps.crop)))
    scaled = pixels.astype(np.float32) / np.float32(255)
    mean = np.asarray(steps.mean, dtype=np.float32)
    std = np.asarray(steps.std, dtype=np.float32)
    normalized = (scaled - mean) / std
    return np.ascontiguousarray(normalized.transpose(2, 0, 1)[np.newaxis])
