"""The vectorized fingerprint comparison equals the plain offset-by-offset definition."""

from __future__ import annotations

import numpy as np
import pytest

from musicark.ingest.dedup import MAX_OFFSET, MIN_OVERLAP, MIN_SHORT_OVERLAP, compare


def plain_compare(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """The definition: every offset in turn, bit errors over the overlap, first minimum."""
    best = (1.0, 0)
    needed = max(MIN_SHORT_OVERLAP, min(MIN_OVERLAP, int(0.8 * min(len(a), len(b)))))
    for offset in range(-MAX_OFFSET, MAX_OFFSET + 1):
        x, y = (a[offset:], b) if offset >= 0 else (a, b[-offset:])
        n = min(len(x), len(y))
        if n < needed:
            continue
        errors = sum(bin(int(v)).count("1") for v in x[:n] ^ y[:n])
        if errors / (32 * n) < best[0]:
            best = (errors / (32 * n), offset)
    return best


def _noisy_copy(rng, a: np.ndarray, shift: int, length: int) -> np.ndarray:
    b = np.roll(a, shift)[:length]
    noise = rng.integers(0, 2**32, len(b), dtype=np.uint64).astype(np.uint32)
    return b ^ (noise & np.roll(noise, 1) & np.roll(noise, 2))


@pytest.mark.parametrize("la,lb,shift", [(300, 300, 0), (300, 280, 7), (250, 300, -40),
                                         (60, 55, 3), (12, 12, 0), (8, 300, 0),
                                         (400, 150, 130), (1, 1, 0)])
def test_compare_equals_the_definition(la: int, lb: int, shift: int) -> None:
    rng = np.random.default_rng(la * 1000 + lb)
    a = rng.integers(0, 2**32, la, dtype=np.uint64).astype(np.uint32)
    b = _noisy_copy(rng, np.resize(a, max(la, lb)), shift, lb)
    for x, y in ((a, b), (b, a), (a, a)):
        got, want = compare(x, y), plain_compare(x, y)
        assert got[1] == want[1] and got[0] == pytest.approx(want[0], abs=1e-12)
    assert compare(a, np.zeros(0, np.uint32)) == (1.0, 0)
