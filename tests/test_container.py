"""The container files, checked without a Docker engine (none runs here or in CI): hadolint on
the Dockerfile, the Compose specification's JSON schema (bundled with check-jsonschema, so no
network) on both compose files, and what the issue asks of each, read from the files."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.gpu.yml", "docker-compose.cluster.yml")
RUNTIME_USER = "10001:10001"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def gpu_override() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.gpu.yml").read_text())
    return loaded


Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, args = line.strip().partition(" ")
            found.append((word.upper(), " ".join(args.split())))
    return found


def stages(text: str) -> dict[str, list[Instruction]]:
    """Each stage's instructions, by its name (FROM ... AS name)."""
    named: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            current = named.setdefault(instruction[1].split()[-1], [])
        current.append(instruction)
    return named


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, list[Instruction]]:
    return stages((REPO / "Dockerfile").read_text())


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "info", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


# Any request for a schema over the network would go to this closed port and fail.
NO_NETWORK = dict.fromkeys(
    ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"), "http://127.0.0.1:9"
)


def compose_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    """The schema check-jsonschema bundles, offline: no schema is fetched."""
    command = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    command += ["--no-cache", *map(str, paths)]
    env = {**os.environ, **NO_NETWORK, "NO_PROXY": ""}
    return subprocess.run(command, capture_output=True, text=True, check=False, env=env)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = hadolint(REPO / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_see_a_root_image_that_runs_make(tmp_path: Path) -> None:
    """The check bites: the kind of Dockerfile this issue replaced fails it."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:3.11-slim\nRUN apt-get update && apt-get install --yes make\n"
        "COPY . /app\nRUN pip install /app\nUSER root\nCMD make run\n"
    )
    result = hadolint(bad)
    assert result.returncode == 1
    for rule in ("DL3008", "DL3042", "DL3002", "DL3025"):
        assert rule in result.stdout, (rule, result.stdout)


def test_every_compose_file_matches_the_compose_specification() -> None:
    result = compose_check(*(REPO / name for name in COMPOSE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_comes_from_the_installed_package() -> None:
    """The schema check-jsonschema bundles (compose_check runs with every proxy pointing at a
    closed port, so a fetch would fail) is the Compose Specification's own."""
    import check_jsonschema

    bundled = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
    schema = json.loads((bundled / "compose-spec.json").read_text())
    assert schema["title"] == "Compose Specification"
    definitions = schema["$defs"]
    assert {"profiles", "deploy"} <= set(definitions["service"]["properties"])
    assert {"init", "user", "volumes"} <= set(definitions["container_spec"]["properties"])


@pytest.mark.parametrize(
    ("mistake", "snippet"),
    [
        ("a port as a mapping", "services:\n  app:\n    ports: {web: 8000}\n"),
        ("an unknown service key", "services:\n  app:\n    gpus_please: true\n"),
        ("profiles as a string", "services:\n  app:\n    profiles: gpu\n"),
    ],
)
def test_the_compose_check_refuses_a_broken_file(
    tmp_path: Path, mistake: str, snippet: str
) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(snippet)
    assert compose_check(broken).returncode == 1, mistake


def test_dependencies_are_installed_before_the_source_is_copied(
    dockerfile: dict[str, list[Instruction]],
) -> None:
    build = dockerfile["build"]
    copies = [(i, args) for i, (word, args) in enumerate(build) if word == "COPY"]
    first_install = next(i for i, (word, args) in enumerate(build) if "pip install" in args)
    before = " ".join(args for i, args in copies if i < first_install).split()
    assert set(before) - {"./"} == {"pyproject.toml", "constraints.txt", "scripts/requirements.py"}
    source = [i for i, args in copies if args.startswith("app ")]
    assert source
    assert source[0] > first_install
    install = " ".join(args for word, args in build if word == "RUN")
    assert "--constraint constraints.txt" in install
    assert "dev" not in re.findall(r"CONVATLAS_EXTRAS=(\S+)", " ".join(a for _, a in build))[0]


def test_the_runtime_stage_has_no_pip_cache_no_build_tools_and_no_dev_extras(
    dockerfile: dict[str, list[Instruction]],
) -> None:
    runtime = dockerfile["runtime"]
    assert runtime == list(dockerfile.values())[-1]  # the default target
    text = " ".join(args for _, args in runtime)
    assert "pip install" not in text
    assert "apt-get" not in text
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime
    # The build stage keeps pip's cache in a BuildKit cache mount, never in a layer.
    for word, args in dockerfile["build"]:
        if word == "RUN" and "pip install" in args:
            assert "--mount=type=cache,target=/root/.cache/pip" in args


def test_the_runtime_runs_as_a_user_who_owns_the_model_volume(
    dockerfile: dict[str, list[Instruction]],
) -> None:
    runtime = dockerfile["runtime"]
    assert ("USER", RUNTIME_USER) in runtime
    assert runtime.index(("USER", RUNTIME_USER)) > max(
        i for i, (word, _) in enumerate(runtime) if word == "RUN"
    )
    setup = " ".join(args for word, args in runtime if word == "RUN")
    uid, gid = RUNTIME_USER.split(":")
    assert f"--uid {uid}" in setup
    assert f"--gid {gid}" in setup
    assert "chown convatlas:convatlas /app/models /app/weights" in setup
    env = " ".join(args for word, args in runtime if word == "ENV").split()
    assert "CONVATLAS_MODELS_DIR=/app/models" in env
    assert ("VOLUME", '["/app/models", "/app/weights"]') in runtime


def test_the_server_starts_directly_and_is_health_checked(
    dockerfile: dict[str, list[Instruction]],
) -> None:
    runtime = dict(dockerfile["runtime"])
    command = json.loads(runtime["CMD"])  # exec form: the server is PID 1 and gets SIGTERM
    assert command == ["convatlas", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert runtime["EXPOSE"] == "8000"
    check = runtime["HEALTHCHECK"]
    assert check.startswith("--interval=")
    probe = json.loads(check.split(" CMD ", 1)[1])
    assert probe[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz" in probe[2]


def test_one_dockerfile_builds_the_cpu_and_the_gpu_image(
    dockerfile: dict[str, list[Instruction]], gpu_override: dict[str, Any]
) -> None:
    build = dockerfile["build"]
    assert ("ARG", "CONVATLAS_EXTRAS=build") in build
    assert any('"${CONVATLAS_EXTRAS}"' in args for word, args in build if word == "RUN")
    args = gpu_override["services"]["app"]["build"]["args"]
    assert args["CONVATLAS_EXTRAS"] == "build,gpu"
    # The extras it names exist, and the GPU one brings ONNX Runtime's CUDA libraries.
    script = REPO / "scripts" / "requirements.py"
    named = subprocess.run(
        [sys.executable, str(script), "build,gpu"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert any(line.startswith("onnxruntime-gpu[cuda,cudnn]") for line in named)
    assert any(line.startswith("torch>=") for line in named)
    assert not any(line.startswith(("pytest", "playwright", "mypy")) for line in named)
    pin = subprocess.run(
        [sys.executable, str(script), "--pin", "torch"], capture_output=True, text=True, check=True
    )
    assert re.fullmatch(r"torch==\d+\.\d+\.\d+\n", pin.stdout)


def test_plain_compose_up_needs_no_gpu(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]
    assert "deploy" not in app
    assert "profiles" not in app  # `docker compose up` starts it
    assert app["build"]["args"]["CONVATLAS_EXTRAS"] == "build"
    assert "8000:8000" in app["ports"]


def test_the_gpu_override_reserves_one_nvidia_gpu(gpu_override: dict[str, Any]) -> None:
    app = gpu_override["services"]["app"]
    [device] = app["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert app["image"] != "convatlas:cpu"


def test_the_model_volume_belongs_to_the_image(compose: dict[str, Any]) -> None:
    """Named volumes, which Docker fills from the image's folders owned by its user; a bind
    mount of ./models would belong to whoever created it on the host (root, by the daemon)."""
    app = compose["services"]["app"]
    assert "models:/app/models" in app["volumes"]
    assert "weights:/app/weights" in app["volumes"]
    assert set(compose["volumes"]) == {"models", "weights"}
    assert not [volume for volume in app["volumes"] if volume.startswith((".", "/"))]


def test_the_readme_says_how_the_container_files_are_checked() -> None:
    readme = (REPO / "README.md").read_text()
    assert "hadolint" in readme
    assert "check-jsonschema" in readme
    assert "docker compose -f docker-compose.yml -f docker-compose.gpu.yml up" in readme


def test_the_image_copies_only_files_that_exist(dockerfile: dict[str, list[Instruction]]) -> None:
    for word, args in dockerfile["build"]:
        if word == "COPY":
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (REPO / source).exists(), source
