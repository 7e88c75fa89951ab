"""Byte-exact restore patches: zstd with the *changed* file as a raw-content dictionary.

As `zstd --patch-from` does: the patch compresses the original bytes against the tagged file,
so it is about the size of what differs (the tag block), not of the audio. The window covers
the whole file and long-distance matching finds the audio where tags shifted it.
"""

from __future__ import annotations

import math

import zstandard

LEVEL = 19


def _window_log(size: int) -> int:
    return max(zstandard.WINDOWLOG_MIN, min(zstandard.WINDOWLOG_MAX, math.ceil(
        math.log2(max(size, 1) + 1)) + 1))


def make_patch(original: bytes, changed: bytes) -> bytes:
    """A patch that rebuilds `original` from `changed`."""
    dictionary = zstandard.ZstdCompressionDict(changed, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    params = zstandard.ZstdCompressionParameters.from_level(
        LEVEL, window_log=_window_log(max(len(original), len(changed))), enable_ldm=True)
    return zstandard.ZstdCompressor(dict_data=dictionary,
                                    compression_params=params).compress(original)


def apply_patch(changed: bytes, patch: bytes) -> bytes:
    dictionary = zstandard.ZstdCompressionDict(changed, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    window = 1 << _window_log(len(changed) * 2 + (1 << 20))
    return zstandard.ZstdDecompressor(dict_data=dictionary,
                                      max_window_size=max(window, 1 << 27)).decompress(patch)
