"""Words for the package's messages: one rule for a count and its noun."""


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``"1 epoch"``, ``"3 epochs"``; ``nouns`` for an irregular plural (``plural(2, "entry", "entries")``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {nouns or noun + 's'}"
