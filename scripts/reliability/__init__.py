"""Load and fault scripts for ConvAtlas, loopback only, bounded in count and time.

`make reliability` (python -m scripts.reliability) starts real uvicorn servers as production
runs them, drives them with the scenarios in scenarios.py, prints each pass criterion with what
was measured, and writes docs/reliability.md. Nothing here is part of `make test`: the quick,
bounded versions of the same checks live in tests/web (test_bad_inputs, test_shutdown, ...).
"""
