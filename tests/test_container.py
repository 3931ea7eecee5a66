"""The container files, as far as they can be checked without a Docker engine: docker-compose.yml
parses and says what the issue asks; the Dockerfile runs the README's commands through make."""

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.M))


def test_the_app_service_mounts_models_and_checks_its_health(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]
    assert app["build"] == "."
    assert "./models:/app/models" in app["volumes"]
    assert app["environment"]["CONVATLAS_MODELS_DIR"] == "/app/models"
    assert app["environment"]["HOST"] == "0.0.0.0"
    assert "8000:8000" in app["ports"]
    probe = " ".join(app["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in probe


def test_the_app_service_reserves_an_nvidia_gpu(compose: dict[str, Any]) -> None:
    [device] = compose["services"]["app"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device["count"] == 1


def test_a_cpu_only_variant_runs_the_same_app_without_a_reservation(
    compose: dict[str, Any],
) -> None:
    app, cpu = compose["services"]["app"], compose["services"]["app-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert "deploy" not in cpu
    same = ("build", "environment", "volumes", "healthcheck", "ports")
    assert {key: cpu[key] for key in same} == {key: app[key] for key in same}


def test_the_dockerfile_installs_and_runs_with_the_makefiles_targets(
    dockerfile: list[tuple[str, str]],
) -> None:
    runs = [args for instruction, args in dockerfile if instruction == "RUN"]
    make_calls = [shlex.split(call) for call in runs if call.startswith("make ")]
    assert make_calls == [["make", "install", "PYTHON=python3.11"]]
    [cmd] = [args for instruction, args in dockerfile if instruction == "CMD"]
    assert cmd == '["make", "run"]'
    assert {"install", "run", "test"} <= make_targets()


def test_the_container_listens_on_all_interfaces(dockerfile: list[tuple[str, str]]) -> None:
    env = " ".join(args for instruction, args in dockerfile if instruction == "ENV")
    assert "HOST=0.0.0.0" in env.split()
    assert "CONVATLAS_MODELS_DIR=/app/models" in env.split()
    # The Makefile must let the environment choose the host (?=), or HOST=0.0.0.0 does nothing.
    assert re.search(r"^HOST \?= ", (REPO / "Makefile").read_text(), re.M)
    assert ("EXPOSE", "8000") in dockerfile


def test_the_image_copies_what_make_install_needs(dockerfile: list[tuple[str, str]]) -> None:
    copied = " ".join(args for instruction, args in dockerfile if instruction == "COPY").split()
    for needed in ("Makefile", "pyproject.toml", "app"):
        assert needed in copied
        assert (REPO / needed).exists()
