"""argparse value types shared by every ``imagegen`` sub-command: a bad value ends with argparse's
usage line and one message that says what was expected (``--epochs: must be >= 1, got 0``)."""

from __future__ import annotations

import argparse
from typing import Callable

__all__ = ["int_at_least", "positive_int", "float_above", "positive_float", "non_negative_float",
           "decay", "comma_separated", "unet_widths", "scale_factors"]


def int_at_least(minimum: int):
    """A whole number >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def float_above(minimum: float, inclusive: bool):
    """A number > ``minimum`` (>= with ``inclusive``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= minimum if inclusive else value > minimum):
            raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {minimum:g}, got {value}")
        return value
    return parse


positive_int = int_at_least(1)
positive_float = float_above(0, inclusive=False)
non_negative_float = float_above(0, inclusive=True)


def decay(text: str) -> float:
    """A moving average's decay: a number in [0, 1) (0: no averaging; 1 would never move)."""
    value = non_negative_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (e.g. 0.999; 0: off), got {value}")
    return value


def comma_separated(item: Callable[[str], float], expected: str, valid: Callable[[tuple], bool], rule: str):
    """Values like ``1,0.9,0.8``, each read by ``item``; ``valid`` checks the whole, ``rule`` says what it wants."""
    def parse(text: str) -> tuple:
        try:
            values = tuple(item(t) for t in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not valid(values):
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}")
        return values
    return parse


unet_widths = comma_separated(int, "three widths like 32,64,128", lambda v: len(v) == 3 and min(v) >= 1,
                              "expected three positive widths (28², 14², 7²) like 32,64,128")
scale_factors = comma_separated(float, "comma-separated factors like 1,0.9,0.8", lambda v: all(0 < x <= 1 for x in v),
                                "factors must lie in (0, 1]")
