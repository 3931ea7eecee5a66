"""python -m scripts.reliability.prober PORT EVERY_S PATH...: probe the server from a process of
its own until stdin closes, then print each answer as a JSON line (path, status, seconds).

A scenario whose client sends large bodies would otherwise time its probes on the event loop
that is busy sending them, and count the client's delay as the server's."""

from __future__ import annotations

import asyncio
import json
import sys

from scripts.reliability.http import Probes


async def _probe(port: int, every_s: float, paths: list[str]) -> Probes:
    probes = Probes(port, paths, every_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The parent closes our stdin when its load is done.
    loop.run_in_executor(None, sys.stdin.read).add_done_callback(lambda _: stop.set())
    await probes.run(stop)
    return probes


def main() -> None:
    port, every_s, paths = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    probes = asyncio.run(_probe(port, every_s, paths))
    for path, replies in probes.replies.items():
        for reply in replies:
            print(json.dumps([path, reply.status, reply.seconds, reply.error]))


if __name__ == "__main__":
    main()
