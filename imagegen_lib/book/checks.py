"""Claims about results that depend on the CPU they were computed on, checked with a tolerance.

A short training run on a CPU is deterministic on one machine, but not across machines: another
vector instruction set (AVX2, AVX-512, Apple's NEON) or another thread count sums floating-point
numbers in another order, and a GAN turns those last-bit differences into different losses,
class histograms and mode counts within a few hundred steps. So a notebook must not promise the
digits it printed; it promises what the run shows — "the 200-step SR net beats bicubic by more
than 1.2 dB" — and checks that claim, with a band measured across CPU numerics settings
(``scripts/numerics_spread.py``) and wide enough for them, but narrow enough that a broken run
(no training, a wrong loss) fails it.

Each check prints only its claim, never the measured value, so its output is the same on every
machine and nbval can compare it; the value itself is printed by the cell that computed it,
whose output nbval does not compare (tag ``nbval-ignore-output``).
"""

from __future__ import annotations

import math

__all__ = ["expect", "expect_between"]


def expect(claim: str, holds: bool) -> None:
    """Does ``claim`` hold for this run? Print ``✓ claim``, or raise AssertionError saying which failed."""
    if not holds:
        raise AssertionError(f"claim failed on this machine: {claim}")
    print(f"✓ {claim}")


def expect_between(what: str, value: float, low: float, high: float, unit: str = "") -> None:
    """Is ``value`` (a result of a CPU run) inside its measured band ``[low, high]``?

    Prints ``✓ what in [low, high]`` (not the value: the line must read the same on every CPU).
    Raises AssertionError with the value when it is outside, or NaN: a band never contains NaN.
    """
    if not low <= high:
        raise ValueError(f"empty band for {what}: low {low} > high {high}")
    band = f"[{low:g}, {high:g}]{unit}"
    if math.isnan(value) or not low <= value <= high:
        raise AssertionError(f"{what} = {value:g}{unit} on this machine, outside its measured band {band}")
    print(f"✓ {what} in {band}")
