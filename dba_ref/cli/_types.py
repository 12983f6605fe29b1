"""Argument types shared by the subcommands: each turns one option's text into a value or says what to type.

argparse calls them; an ``argparse.ArgumentTypeError`` becomes the one-line
``dba-ref SUBCOMMAND: error: argument --OPTION: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1, e.g. ``--epochs 20``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def count_or_fraction(text: str):
    """An ``int`` count (``2``) or a ``float`` fraction (``0.25``); the library checks the range."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer count or a fraction, got {text!r}") from None


def batch_size(text: str):
    """A positive integer, or ``full`` (returned as None: the whole training set in one batch)."""
    if text == "full":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}") from None


def widths(text: str) -> list[int]:
    """Comma-separated layer widths, ``256,128``; an empty text means no hidden layer."""
    if not text.strip():
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 256,128, got {text!r}") from None


def hparam(text: str) -> tuple:
    """``NAME=VALUE``, the value read as an int, a float, true/false, or else kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    return key, value
