"""ConvAtlas's benchmark suite: `make bench` writes docs/benchmarks.md.

    python -m scripts.bench                         every section, then docs/benchmarks.md
    python -m scripts.bench --only inference,table  some sections (written to artifacts/bench/)

Sections: inference, upload, concurrency, memory, table, pages, startup. Each measures what it
compares side by side in one run, interleaved, and reports medians with their spread. Nothing
here runs as part of the tests. Load generators only ever target 127.0.0.1 and stop by themselves.
"""
