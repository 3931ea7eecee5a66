"""Requirement lines from pyproject.toml, for installing the dependencies before the source.

    python requirements.py [EXTRA ...]   the app's dependencies and those of each extra
    python requirements.py --pin NAME     NAME's pin in constraints.txt, as NAME==VERSION

The Dockerfile copies this file, pyproject.toml and constraints.txt alone, installs what they
name, and only then copies the source: an edit to the code reuses the dependency layers. Only
the standard library: it runs before anything is installed. An extra naming the project
itself (``convatlas[build]``) is expanded.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Beside this file (in the image's build stage) or at the top of the repository.
PYPROJECT = next(p for p in (HERE / "pyproject.toml", HERE.parent / "pyproject.toml") if p.exists())
CONSTRAINTS = PYPROJECT.with_name("constraints.txt")
SELF = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)\[(?P<extras>[^\]]+)\]\s*$")


def requirements(extras: list[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    lines: list[str] = list(project["dependencies"])
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"requirements.py: no extra {extra!r}; known: {', '.join(optional)}")
        seen.add(extra)
        for line in optional[extra]:
            own = SELF.match(line)
            if own and own["name"] == project["name"]:
                pending += [name.strip() for name in own["extras"].split(",")]
            else:
                lines.append(line)
    return lines


def pin(name: str) -> str:
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line.split("==", 1)[0].strip().lower() == name.lower():
            return line.strip()
    raise SystemExit(f"requirements.py: {name} is not pinned in {CONSTRAINTS.name}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--pin"] and len(argv) == 2:
        print(pin(argv[1]))
        return
    extras = [extra for arg in argv for extra in arg.split(",") if extra]
    print("\n".join(requirements(extras)))


if __name__ == "__main__":
    main(sys.argv[1:])
