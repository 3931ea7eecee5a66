"""Live inference: an uploaded picture through one net or several, its top-5 and feature maps.

The routes are sync functions, so FastAPI runs them in its threadpool: decoding and ONNX Runtime
are blocking CPU work and stay off the event loop. The upload is read (bounded, in memory) by
ImageUpload before they start; the service's refusals become the error envelope (errors.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from app.inference.errors import UnknownModel
from app.inference.results import FeatureMapsResult, ModelStatus, PredictResult
from app.settings import Settings
from app.web.caching import NO_STORE
from app.web.catalog import weights_now
from app.web.deps import IMAGE_FIELD, ImageUpload, InferenceDep, NetId, SettingsDep
from app.web.errors import ApiError, error_responses
from app.web.public import public_model
from app.web.weights import ServedWeights

router = APIRouter(prefix="/api/predict", tags=["predict"])

# One upload runs through at most this many nets: each is a full forward pass (a VGG is about
# 15 GMACs), so a request stays bounded in work as the body is in bytes.
MAX_NETS_PER_UPLOAD = 4
UPLOAD_ERRORS = error_responses(404, 413, 415, 422, 503)

# The image is read from the raw multipart stream (never spooled to disk), so FastAPI does not
# document the body by itself; this describes it for /docs, with the default form limits
# (Settings.max_form_fields other parts beside the picture, each max_form_field_bytes at most).
FORM_DEFAULTS = Settings.model_fields
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [IMAGE_FIELD],
                    "properties": {
                        IMAGE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "the picture: JPEG, PNG, GIF, BMP or WebP",
                        }
                    },
                    # On the wire every field is text, so no type is asserted: only the size.
                    # The count (at most max_form_fields beside the picture, else 422) is said
                    # in words, not as maxProperties: a client library drops a field whose value
                    # is null, so a body "with one field too many" can arrive within the limit.
                    "additionalProperties": {
                        "maxLength": FORM_DEFAULTS["max_form_field_bytes"].default,
                        "description": (
                            "ignored; at most "
                            f"{FORM_DEFAULTS['max_form_fields'].default} such fields (else 422)"
                        ),
                    },
                },
                # A picture's bytes cannot be written in JSON: the example says how to send one.
                "examples": {
                    "photo": {
                        "summary": "a photo, as curl sends it",
                        "description": (
                            f"`curl -F {IMAGE_FIELD}=@photo.jpg "
                            "http://127.0.0.1:8000/api/predict/alexnet-lecture`"
                        ),
                    }
                },
            }
        },
    }
}

NetIds = Annotated[
    str,
    Query(
        max_length=400,
        description=f"net ids, comma-separated (at most {MAX_NETS_PER_UPLOAD})",
        examples=["alexnet-lecture,zfnet-lecture"],
    ),
]


class PredictInfo(ModelStatus):
    """Whether a net can predict now (and why not), what it runs on and how large an upload
    may be: what a page asks before it offers an upload."""

    build_running: bool
    service_provider: str  # the provider the service chose, before any session is loaded
    max_upload_bytes: int
    served: ServedWeights  # the weights in words a page shows as they are


class PredictMany(BaseModel):
    """The same picture through several nets, in the order asked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    results: list[PredictResult]


def _split_ids(ids: str) -> list[str]:
    # One run per net however often it is named (ids=vgg11,vgg11 runs vgg11 once).
    names = list(dict.fromkeys(name.strip() for name in ids.split(",") if name.strip()))
    if not 1 <= len(names) <= MAX_NETS_PER_UPLOAD:
        message = f"give 1 to {MAX_NETS_PER_UPLOAD} net ids, comma-separated"
        issues = [{"location": "query.ids", "message": message}]
        raise ApiError(422, "invalid_request", f"invalid request: {message}", issues=issues)
    return names


@router.get(
    "/{net_id}",
    summary="Whether a net can predict now, and why not (for instance: still building)",
    responses=error_responses(404, 503),
)
def predict_info(
    net_id: NetId, response: Response, service: InferenceDep, settings: SettingsDep
) -> PredictInfo:
    """Built and loaded or not, on which provider, with which weights, how large an upload may
    be, and why a net cannot predict yet (for instance: still building). It changes as the
    background build goes on, so it is never cached."""
    response.headers["Cache-Control"] = NO_STORE
    status = service.status()
    model = next((entry for entry in status.models if entry.id == net_id), None)
    if model is None:
        raise UnknownModel(net_id, [entry.id for entry in status.models])
    info = PredictInfo(
        **model.model_dump(),
        build_running=status.build_running,
        service_provider=status.provider,
        max_upload_bytes=settings.max_body_predict,
        served=weights_now(settings.models_dir, net_id),
    )
    return public_model(info)


@router.post(
    "/{net_id}",
    summary="The top-5 ImageNet classes of an uploaded picture",
    responses=UPLOAD_ERRORS,
    openapi_extra=IMAGE_BODY,
)
def predict(net_id: NetId, image: ImageUpload, service: InferenceDep) -> PredictResult:
    """The picture, resized and normalized as the net was trained, through its ONNX model:
    the five most probable ImageNet classes, the provider that ran it, whether the weights are
    pretrained or untrained (then the classes are noise), and the time each stage took."""
    return service.predict(net_id, image)


@router.post(
    "",
    summary="One picture through several nets (decoded once): each net's top-5, in order",
    responses=UPLOAD_ERRORS,
    openapi_extra=IMAGE_BODY,
)
def predict_many(ids: NetIds, image: ImageUpload, service: InferenceDep) -> PredictMany:
    """The same answer as POST /api/predict/{net_id} for each net in `ids`, from one upload
    decoded once: to compare what different nets see in the same picture."""
    return PredictMany(results=service.predict_many(_split_ids(ids), image))


@router.post(
    "/{net_id}/features",
    summary="Each conv and pool layer's output volume and its most active channels, as PNGs",
    responses=UPLOAD_ERRORS,
    openapi_extra=IMAGE_BODY,
)
def feature_maps(net_id: NetId, image: ImageUpload, service: InferenceDep) -> FeatureMapsResult:
    """For each conv and pool layer: its output volume (W x H x D) and its most active
    channels as small grayscale PNGs (base64) on one scale per layer, so brighter means more
    active across the layer."""
    return service.feature_maps(net_id, image)
