"""What each section hands back, and docs/benchmarks.md made from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["met", "missed", "not measured"]


@dataclass(frozen=True)
class Target:
    """One target of the issue: what it asks, what this run measured, and the verdict."""

    name: str
    wanted: str
    measured: str
    verdict: Verdict


def target(name: str, wanted: str, measured: str, met: bool | None) -> Target:
    verdict: Verdict = "not measured" if met is None else "met" if met else "missed"
    return Target(name, wanted, measured, verdict)


@dataclass
class Section:
    """A section of the report: its own markdown, the targets it judged, how long it took."""

    key: str
    title: str
    body: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    seconds: float = 0.0
    contention: str = ""  # what other processes took of the machine meanwhile
    others_share: float | None = None  # the same as a fraction of all CPUs

    def add(self, *lines: str) -> None:
        self.body.extend(lines)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.body.extend(markdown_table(header, rows))
        self.body.append("")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def targets_table(sections: Sequence[Section]) -> list[str]:
    rows = [
        (section.title, t.name, t.wanted, t.measured, _badge(t.verdict), _share(section))
        for section in sections
        for t in section.targets
    ]
    header = ("section", "target", "wanted", "measured", "verdict", "CPU used by others")
    return markdown_table(header, rows)


def _share(section: Section) -> str:
    return "?" if section.others_share is None else f"{section.others_share:.0%}"


def _badge(verdict: Verdict) -> str:
    return {"met": "**met**", "missed": "**MISSED**", "not measured": "not measured"}[verdict]


def render(intro: str, machine: list[str], sections: Sequence[Section]) -> str:
    lines = [intro.rstrip(), "", "## Machine and versions", "", *machine, ""]
    lines += ["## Targets", "", *targets_table(sections), ""]
    for section in sections:
        lines += [f"## {section.title}", "", *section.body]
        if section.commands:
            lines += ["Commands:", "", "```", *section.commands, "```", ""]
        lines += [f"_Section time: {section.seconds:.0f} s; {section.contention}._", ""]
    return "\n".join(lines).rstrip() + "\n"
