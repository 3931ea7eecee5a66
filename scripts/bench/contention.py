"""How much of the machine other processes took while a section ran.

The machine-wide busy time (/proc/stat) less this run's own: this process and every process it
started (servers, load generators, Chromium, a fresh clone's `make run`), each sampled from
/proc while it lives, so a child that is never waited for (Chromium under Playwright's driver)
still counts as ours. What is left was used by someone else: on a shared machine, a test run of
another developer's. Processes that start and end between two samples are missed (a few ms each).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

SAMPLE_S = 0.25


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def process_cpu_s(pid: int) -> float | None:
    """User + system seconds of one process (not of its children), None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> tuple[float, float, float]:
    """Machine-wide CPU seconds since boot: busy, all (idle included), stolen by the host."""
    fields = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq
    return busy / tick, (busy + idle + iowait + steal) / tick, steal / tick


class Contention:
    """``with Contention() as c: ...`` then ``c.others`` (share of all CPUs) and ``c.text``."""

    def __init__(self) -> None:
        self.others = 0.0
        self.steal = 0.0
        self._stop = threading.Event()
        self._baseline: dict[int, float] = {}
        self._latest: dict[int, float] = {}

    def __enter__(self) -> Contention:
        self._machine = machine_cpu_s()
        self._self = _self_cpu_s()
        for pid in descendants(os.getpid()):
            if (cpu := process_cpu_s(pid)) is not None:
                self._baseline[pid] = cpu
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        busy0, all0, steal0 = self._machine
        busy1, all1, steal1 = machine_cpu_s()
        own = (
            _self_cpu_s()
            - self._self
            + sum(cpu - self._baseline.get(pid, 0.0) for pid, cpu in self._latest.items())
        )
        elapsed = all1 - all0
        if elapsed > 0:
            self.others = max(0.0, busy1 - busy0 - own) / elapsed
            self.steal = (steal1 - steal0) / elapsed

    @property
    def text(self) -> str:
        return (
            f"{self.others:.0%} of the CPUs used by other processes, "
            f"{self.steal:.0%} stolen by the host"
        )

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def _sample(self) -> None:
        for pid in descendants(os.getpid()):
            if (cpu := process_cpu_s(pid)) is not None:
                self._latest[pid] = max(cpu, self._latest.get(pid, 0.0))


def _self_cpu_s() -> float:
    times = os.times()
    return times.user + times.system
