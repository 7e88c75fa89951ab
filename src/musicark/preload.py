"""Imported once by the fork server that starts musicark's workers (musicark.processes):
the worker modules, loaded before any worker is forked, so a worker starts in milliseconds.

The fork server forks every worker, so it must stay single-threaded: OpenBLAS, which numpy
loads, would start a thread pool at import; one BLAS thread starts none (workers are one
per core already). Modules that start threads at import (pyarrow's jemalloc) stay out.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import musicark.derive.opus  # noqa: E402, F401
import musicark.ingest.examine  # noqa: E402, F401
import musicark.release.hashing  # noqa: E402, F401
import musicark.verify.store  # noqa: E402, F401
