"""The public view of the server's state: what /readyz and the predict answers may say.

Public: each net's state in words (built, loaded, verified, which provider, pretrained or
untrained, why a net cannot predict), file names such as ``model.onnx`` or a checkpoint's
``alexnet-owt-7be5be79.pth``, the queue's figures. Not public: where files live on the server
(absolute paths, the models directory), the URLs the weights are fetched from, the network
addresses of our own machines (a Ray head's host and port), and raw
exception text (``[Errno -2] Name or service not known``), which tell an attacker about the
machine and its network. Those go to the server's log, once per distinct text, for operators.

Every text of an answer passes ``public_text``; the models directory is shown by its name only.
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel

log = logging.getLogger("convatlas.public")

URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>()\[\]]+", re.IGNORECASE)
# A machine's network address with its port ("10.0.0.5:6379", "head.example:10001"): where our
# own infrastructure (a Ray head, say) listens.
HOST_PORT = re.compile(
    r"(?<![\w.:/-])(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+):\d{1,5}\b"
)
HOST_PORT_WORDS = "its address"
# An absolute path of two or more segments (POSIX or Windows), not inside a word or a URL.
POSIX_PATH = re.compile(r"(?<![\w.~/:-])(?:/[^\s/'\":,;()\[\]<>]+){2,}/?")
WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\[^\s'\":;<>]+")
# Raw OS and resolver errors: "[Errno -2] Name or service not known", "[WinError 2] ...".
OS_ERROR = re.compile(r"\[(?:Errno|WinError) -?\d+\][^;\n<>]*")
OS_ERROR_WORDS = "a system error (the server's log has it)"
MAX_LOGGED = 512
_logged: set[str] = set()

M = TypeVar("M", bound=BaseModel)


def _file_name(match: re.Match[str]) -> str:
    text = match.group(0).rstrip(".,")
    name = PureWindowsPath(text).name if "\\" in text else PurePosixPath(text).name
    return (name or "a server path") + match.group(0)[len(text) :]


def _url_file(match: re.Match[str]) -> str:
    text = match.group(0).rstrip(".,")
    name = PurePosixPath(urlparse(text).path).name
    return (name or "its source") + match.group(0)[len(text) :]


def public_text(text: str) -> str:
    """``text`` with URLs and absolute paths cut to their file names and raw OS errors
    replaced by words; the original is logged (once) when anything was cut."""
    public = URL.sub(_url_file, text)
    public = OS_ERROR.sub(OS_ERROR_WORDS, public)
    public = HOST_PORT.sub(HOST_PORT_WORDS, public)
    public = WINDOWS_PATH.sub(_file_name, public)
    public = POSIX_PATH.sub(_file_name, public)
    if public != text and text not in _logged:
        if len(_logged) >= MAX_LOGGED:
            _logged.clear()
        _logged.add(text)
        log.warning("not shown in answers: %s", text)
    return public


def _public_value(value: object) -> object:
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, BaseModel):
        return public_model(value)
    if isinstance(value, list):
        return [_public_value(item) for item in value]
    return value


def public_model(model: M) -> M:
    """A copy of ``model`` with every text in it (nested models and lists too) made public."""
    updates = {name: _public_value(getattr(model, name)) for name in type(model).model_fields}
    models_dir = updates.get("models_dir")
    if isinstance(models_dir, str):
        updates["models_dir"] = PurePosixPath(models_dir).name  # its name, never where it is
    return model.model_copy(update=updates)
