"""GET /api/architectures/{id}/receptive-fields: the calculator's fields and how the served model
crops a picture, in the picture's own pixels, exactly as the preprocessing does."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app.inference.images import crop_box, resized_size, source_box

from .support import error_of

URL = "/api/architectures/alexnet-lecture/receptive-fields"


def test_the_crop_in_the_pictures_pixels() -> None:
    # 451 x 300 (the tabby cat): shorter side to 256 -> 384 x 256; crop 227 at round(78.5) = 78
    # and round(14.5) = 14 (Python rounds half to even, as torchvision does)
    assert resized_size(451, 300, 256) == (384, 256)
    assert crop_box(384, 256, 227) == (78, 14, 305, 241)
    assert source_box(451, 300, 256, 227) == (
        78 * 451 / 384,
        14 * 300 / 256,
        305 * 451 / 384,
        241 * 300 / 256,
    )


def test_the_source_box_is_where_the_crop_comes_from() -> None:
    """A picture whose pixels say their own coordinates: the crop's corners read back as the
    source box's corners, to within the resampling."""
    width, height = 400, 250  # y fits in one channel
    ys, xs = np.mgrid[0:height, 0:width]
    picture = Image.fromarray(np.stack([xs % 256, ys % 256, xs // 256], -1).astype(np.uint8))
    resized = picture.resize(resized_size(width, height, 256), Image.Resampling.BILINEAR)
    crop = np.asarray(resized.crop(crop_box(*resized.size, 227))).astype(int)
    left, top, right, bottom = source_box(width, height, 256, 227)
    assert abs(crop[0, 0, 0] + 256 * crop[0, 0, 2] - left) <= 2
    assert abs(crop[0, 0, 1] - top) <= 2
    assert abs(crop[-1, -1, 0] + 256 * crop[-1, -1, 2] - right) <= 3
    assert abs(crop[-1, -1, 1] - bottom) <= 3


def test_fields_and_view_of_a_built_net(predict_client: TestClient) -> None:
    body = predict_client.get(f"{URL}?width=451&height=300").json()
    assert body["input"] == 227
    assert body["view"] == {
        "width": 451,
        "height": 300,
        "resize": 256,
        "crop": 227,
        "source_box": list(source_box(451, 300, 256, 227)),
    }
    pool3 = body["layers"][-1]
    assert (pool3["name"], pool3["receptive_field"], pool3["jump"], pool3["start"]) == (
        "pool3",
        195,
        32,
        0,
    )
    assert predict_client.get(URL).json()["view"] is None


def test_bad_asks_get_the_envelope(predict_client: TestClient) -> None:
    half = predict_client.get(f"{URL}?width=451")
    assert half.status_code == 422
    assert "both width and height" in error_of(half)["message"]
    unbuilt = predict_client.get("/api/architectures/vgg16/receptive-fields?width=10&height=10")
    assert unbuilt.status_code == 409
    assert error_of(unbuilt)["code"] == "model_not_built"
    assert predict_client.get(f"{URL}?width=0&height=5").status_code == 422
    assert predict_client.get("/api/architectures/nope/receptive-fields").status_code == 404
