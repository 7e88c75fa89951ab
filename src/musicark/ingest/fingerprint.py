"""Chromaprint fingerprints through libchromaprint, computed from audio decoded once by PyAV.

Like `fpcalc`: the default algorithm (TEST2), the first 120 s, audio converted to 11,025 Hz
mono 16-bit before feeding (fpcalc's FFmpeg reader does the same). The raw fingerprint is a
list of 32-bit integers, one per ~0.124 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 11_025
MAX_SECONDS = 120
ALGORITHM_DEFAULT = 1  # CHROMAPRINT_ALGORITHM_TEST2


class ChromaprintMissing(RuntimeError):
    """libchromaprint is not installed (Debian: libchromaprint1, pulled by libchromaprint-tools)."""


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("chromaprint") or "libchromaprint.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise ChromaprintMissing(f"cannot load libchromaprint ({name}): {exc}") from exc
    lib.chromaprint_new.restype = ctypes.c_void_p
    lib.chromaprint_new.argtypes = [ctypes.c_int]
    lib.chromaprint_free.argtypes = [ctypes.c_void_p]
    lib.chromaprint_start.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.chromaprint_feed.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.chromaprint_finish.argtypes = [ctypes.c_void_p]
    lib.chromaprint_get_raw_fingerprint.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint32)),
        ctypes.POINTER(ctypes.c_int)]
    lib.chromaprint_dealloc.argtypes = [ctypes.c_void_p]
    return lib


class Fingerprinter:
    """Feed 11,025 Hz mono int16 chunks; `finish()` gives the raw fingerprint (uint32 array)."""

    def __init__(self) -> None:
        self.lib = _lib()
        self.ctx = self.lib.chromaprint_new(ALGORITHM_DEFAULT)
        if not self.lib.chromaprint_start(self.ctx, SAMPLE_RATE, 1):
            raise RuntimeError("chromaprint_start failed")
        self.remaining = SAMPLE_RATE * MAX_SECONDS

    @property
    def wants_more(self) -> bool:
        return self.remaining > 0

    def feed(self, samples: np.ndarray) -> None:
        if self.remaining <= 0 or not len(samples):
            return
        chunk = np.ascontiguousarray(samples[: self.remaining], dtype=np.int16)
        self.remaining -= len(chunk)
        self.lib.chromaprint_feed(self.ctx, chunk.ctypes.data, len(chunk))

    def finish(self) -> np.ndarray:
        try:
            if not self.lib.chromaprint_finish(self.ctx):
                raise RuntimeError("chromaprint_finish failed")
            data = ctypes.POINTER(ctypes.c_uint32)()
            size = ctypes.c_int()
            if not self.lib.chromaprint_get_raw_fingerprint(self.ctx, ctypes.byref(data),
                                                            ctypes.byref(size)):
                raise RuntimeError("chromaprint_get_raw_fingerprint failed")
            try:
                return np.ctypeslib.as_array(data, shape=(size.value,)).copy() \
                    if size.value else np.zeros(0, np.uint32)
            finally:
                self.lib.chromaprint_dealloc(data)
        finally:
            self.lib.chromaprint_free(self.ctx)
            self.ctx = None
