"""Upload -> upright RGB image, and RGB image -> the tensor torchvision's ImageNet transform makes.

Decoding is defensive: the decoder is chosen from the file's first bytes and only from an
allowlist (JPEG, PNG, GIF, BMP, WebP), so Pillow never hands an upload to a plugin we did not
choose (EPS would start Ghostscript). The size is checked from the header before any pixel is
decoded, large JPEGs are decoded at a reduced scale (``draft``), and only a GIF's first frame is
read. Pillow's decompression-bomb warning is an error in this process.

torchvision's ``ImageClassification`` transform on a PIL image is: resize the shorter side to 256
with PIL's bilinear filter (PIL always antialiases when it shrinks), center-crop with
``int(round((size - crop) / 2.0))`` offsets, divide by 255 and normalize, all in float32. This
module does the same steps with PIL and numpy, so published weights give the published answers.
"""

from __future__ import annotations

import io
import struct
import sys
import warnings

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from app.inference.decode_budget import SIXTEEN_BIT, DecodeBudget, estimate
from app.inference.errors import ImageRejected
from app.inference.slow_encodings import check_encoding
from app.repository.manifest import Preprocess

ACCEPTED = "JPEG, PNG, GIF, BMP or WebP"
WHITE = (255, 255, 255)
SIXTEEN_BIT_MODES = SIXTEEN_BIT
# Reduced right after decoding (a factor > 1 only when the budget needs it): every mode reduce()
# takes except 16-bit ones (their high byte is taken first) and a colour-key transparency.
EARLY_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "CMYK"})
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# What Pillow raises on damaged data. Its warnings about damaged data (a corrupt EXIF block, a
# malformed MPO) are caught too where they are raised: under ``python -W error`` they would
# otherwise end a request with a 500.
READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)
BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
DEFAULT_MAX_ASPECT = 20.0
# A JPEG whose shorter side is at least twice this is decoded at 1/2, 1/4 or 1/8 scale, never
# below this side: the 256 every net resizes to, so the antialiased bilinear shrink still does
# the final step. Scaling in the DCT averages each 8x8 block, a low-pass filter of its own: for a
# grainy 12 Mpx photo the tensor is on average 0.4 of a uint8 level from the undrafted
# transform's, at most 9 levels on the sharpest edges (tests/inference/test_inference_images.py;
# at 1/4 scale: 0.2 and 3), and the decode takes about a quarter less time than at 1/4. A 48 Mpx
# photo costs under 1 Mpx of memory instead of 48.
DRAFT_SIDE = 256

# Pillow only warns between its limit and twice it, and a warning lets decoding go on. Our own
# header check (Settings.max_image_pixels) normally refuses such images first; this is the
# backstop when that limit is set above Pillow's.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def sniff(data: bytes) -> str | None:
    """The Pillow format for an accepted file, from its first bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def refused_kind(data: bytes) -> str:
    """What a refused upload looks like, to say so; only for the message."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "a TIFF image"
    if data[4:8] == b"ftyp":
        return "an HEIF/HEIC/AVIF image"
    if head.startswith(b"%pdf"):
        return "a PDF document"
    if head.startswith(b"%!ps") or data[:4] == b"\xc5\xd0\xd3\xc6":
        return "a PostScript/EPS document"
    if head.startswith((b"<svg", b"<?xml")):
        return "an SVG or XML document"
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML document"
    return "not an image in an accepted format"


def decode(
    data: bytes,
    max_pixels: int,
    max_aspect: float = DEFAULT_MAX_ASPECT,
    budget: DecodeBudget | None = None,
) -> Image.Image:
    """The upload as an upright 8-bit RGB image, or ImageRejected saying why not. With a
    ``budget`` (decode_budget.py) the memory the decode will take is estimated from the header
    first: refused over the per-picture budget, reduced where that brings it under, and
    reserved from the budget every decode in progress shares (Overloaded when it stays full)."""
    image = open_upload(data, max_pixels, max_aspect, budget)
    if budget is None:
        return decoded(image, max_pixels, 1)
    nbytes, factor = plan(image, budget)
    with budget.memory.reserve(nbytes, budget.wait_s):
        return decoded(image, max_pixels, factor)


def open_upload(
    data: bytes, max_pixels: int, max_aspect: float, budget: DecodeBudget | None = None
) -> Image.Image:
    """The upload with only its header read, checked against the limits (a big JPEG drafted),
    or ImageRejected saying why not. A WebP is checked against the limits and the per-picture
    budget before it is opened: opening one makes libwebp allocate its canvases."""
    if not data:
        raise ImageRejected("empty", "the upload is empty")
    canvas = webp_canvas(data) if sniff(data) == "WEBP" else None
    if canvas is not None:
        width, height, alpha = canvas
        check_size(width, height, max_pixels, max_aspect)
        if budget is not None:
            budget.plan(estimate(width, height, "RGBA" if alpha else "RGB", "WEBP", False), "WEBP")
    return _open(data, max_pixels, max_aspect)


def webp_canvas(data: bytes) -> tuple[int, int, bool] | None:
    """A WebP's canvas (width, height, whether it has alpha) from its first chunk's header
    (RFC 9649), or None when that is none of VP8X, VP8L, VP8 (Pillow then says what is wrong)."""
    if len(data) < 30:
        return None
    chunk, payload = data[12:16], data[20:30]
    if chunk == b"VP8X":  # flags, 3 reserved bytes, then width - 1 and height - 1 in 24 bits
        width = 1 + int.from_bytes(payload[4:7], "little")
        height = 1 + int.from_bytes(payload[7:10], "little")
        return width, height, bool(payload[0] & 0x10)
    if chunk == b"VP8L" and payload[0] == 0x2F:  # then 14 + 14 bits of size - 1, 1 of alpha
        bits = int.from_bytes(payload[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF), bool(bits >> 28 & 1)
    if chunk == b"VP8 " and payload[3:6] == b"\x9d\x01\x2a":  # a key frame's start code
        width = int.from_bytes(payload[6:8], "little") & 0x3FFF
        height = int.from_bytes(payload[8:10], "little") & 0x3FFF
        return width, height, False
    return None


def plan(image: Image.Image, budget: DecodeBudget) -> tuple[int, int]:
    """(bytes to reserve from the shared budget, reduce factor) for an opened upload, or
    ImageRejected (413) when even its reduced decode is over the per-picture budget."""
    transparent = "transparency" in image.info
    found = estimate(image.width, image.height, image.mode, image.format or "", transparent)
    return budget.plan(found, image.format or "")


def decoded(image: Image.Image, max_pixels: int, factor: int) -> Image.Image:
    """Decode (the first frame only), reduce by ``factor`` as early as the mode allows, then
    turn upright and into 8-bit RGB."""
    try:
        image.load()
    except BOMB_ERRORS:
        raise ImageRejected("too_large", f"more than {max_pixels} pixels") from None
    except (*READ_ERRORS, Warning) as error:
        raise ImageRejected("undecodable", f"the image data is damaged: {error}") from None
    if factor > 1 and image.mode in EARLY_REDUCIBLE and "transparency" not in image.info:
        image, factor = reduced(image, factor), 1
    return to_rgb(upright(image), factor)


def reduced(image: Image.Image, factor: int) -> Image.Image:
    """``image`` shrunk by a whole factor (a box filter), keeping its info (EXIF, ICC)."""
    if factor == 1:
        return image
    small = image.reduce(factor)
    small.info = dict(image.info)
    return small


def _open(data: bytes, max_pixels: int, max_aspect: float) -> Image.Image:
    """The image with only its header read, checked against the limits; a big JPEG drafted."""
    kind = sniff(data)
    if kind is None:
        message = f"{refused_kind(data)}; accepted: {ACCEPTED}"
        raise ImageRejected("unsupported_format", message)
    check_encoding(kind, data)
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
    except BOMB_ERRORS:  # Pillow's own check, inside open(): same verdict as ours
        raise ImageRejected("too_large", f"more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, *READ_ERRORS, Warning) as error:
        raise ImageRejected("undecodable", f"the {kind} header is damaged: {error}") from None
    check_size(image.width, image.height, max_pixels, max_aspect)
    if image.format in ("JPEG", "MPO") and min(image.size) >= 2 * DRAFT_SIDE:
        image.draft(None, (DRAFT_SIDE, DRAFT_SIDE))
    return image


def check_size(width: int, height: int, max_pixels: int, max_aspect: float) -> None:
    if width * height > max_pixels:
        message = f"{width}x{height} is more than {max_pixels} pixels"
        raise ImageRejected("too_large", message)
    if max(width, height) > max_aspect * min(width, height):
        message = f"{width}x{height} is more elongated than {max_aspect:g}:1"
        raise ImageRejected("too_elongated", message)


def upright(image: Image.Image) -> Image.Image:
    """The image as it is meant to be seen: its EXIF orientation applied, in place.

    An orientation outside 1-8 (say 99) means no rotation. A damaged EXIF block is ignored rather
    than refused: Pillow warns about it and goes on (under ``python -W error`` the warning is
    raised, and then the orientation alone is given up).
    """
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except (*READ_ERRORS, Warning):
        pass
    return image


def to_rgb(image: Image.Image, factor: int = 1) -> Image.Image:
    """8-bit RGB: alpha composited over white, 16-bit scaled, CMYK through its ICC profile;
    reduced by ``factor`` as soon as the mode allows."""
    if image.mode in SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_rgb(image, factor)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return _over_white(image, factor)
    if image.mode == "RGB":
        return reduced(image, factor)
    if image.mode == "CMYK" and image.info.get("icc_profile"):
        return reduced(_cmyk_with_profile(image), factor)
    try:
        return reduced(image.convert("RGB"), factor)
    except ValueError as error:
        raise ImageRejected(
            "unsupported_mode", f"cannot read {image.mode} images: {error}"
        ) from None


def _over_white(image: Image.Image, factor: int = 1) -> Image.Image:
    # A transparent pixel's colour is arbitrary (often black, sometimes a hidden picture): white
    # is what a page shows behind it. Palette and tRNS transparency become alpha in convert().
    rgba = reduced(image if image.mode == "RGBA" else image.convert("RGBA"), factor)
    composed = Image.new("RGB", rgba.size, WHITE)
    composed.paste(rgba, mask=rgba)
    return composed


def _high_byte(values: NDArray[np.generic]) -> NDArray[np.uint8]:
    """Each 16-bit value's high byte, without a wider copy: a 16-bit array is read through a
    byte view; a 32-bit one (mode I) is clipped to 0..65535 and shifted in its own copy."""
    if values.dtype.itemsize == 2:
        order = values.dtype.byteorder
        big_endian = order == ">" or (order == "=" and sys.byteorder == "big")
        high = 0 if big_endian else 1
        pairs: NDArray[np.uint8] = values.view(np.uint8).reshape(*values.shape, 2)
        return np.ascontiguousarray(pairs[..., high])
    clipped = np.clip(values, 0, 65535)
    np.right_shift(clipped, 8, out=clipped)
    high_bytes: NDArray[np.uint8] = clipped.astype(np.uint8)
    return high_bytes


def _sixteen_bit_to_rgb(image: Image.Image, factor: int = 1) -> Image.Image:
    # Pillow's convert() would clip 0..65535 to 0..255, turning most pixels white; keep the high
    # byte instead, as torchvision's uint16 -> uint8 conversion does.
    values = np.asarray(image)
    high_byte = _high_byte(values)
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):  # a tRNS grey level: those pixels show the page, white
        high_byte[values == transparent] = 255
    del values
    return reduced(Image.fromarray(high_byte), factor).convert("RGB")


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


def source_box(width: int, height: int, resize: int, crop: int) -> tuple[float, ...]:
    """The crop of ``preprocess`` in the picture's own pixels (left, top, right, bottom): the
    part of a width x height picture the net sees, for a page to draw it as the net saw it."""
    across, down = resized_size(width, height, resize)
    left, top, right, bottom = crop_box(across, down, crop)
    return (
        left * width / across,
        top * height / down,
        right * width / across,
        bottom * height / down,
    )
