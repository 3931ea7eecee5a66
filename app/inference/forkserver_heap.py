"""Imported last by the decode workers' forkserver (decoding.py), never by the server: freezes
the heap the forkserver has built by then (the decoder, numpy, Pillow), so that the garbage
collector of a worker forked from it never walks those objects, and so never copies their pages.
Without it each new worker wrote to most of the inherited heap at its first collection."""

import gc

gc.collect()
gc.freeze()
