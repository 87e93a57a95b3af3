"""argparse value types shared by every ``imagegen`` sub-command: a bad value ends with argparse's
usage line and one message that says what was expected (``--epochs: must be >= 1, got 0``)."""

from __future__ import annotations

import argparse

__all__ = ["int_at_least", "positive_int", "float_above", "positive_float", "non_negative_float"]


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
