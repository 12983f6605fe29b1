"""Words for the package's messages: one rule for a count and its noun, one for a table of text."""


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``"1 epoch"``, ``"3 epochs"``; ``nouns`` for an irregular plural (``plural(2, "entry", "entries")``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {nouns or noun + 's'}"


def columns(rows) -> list:
    """Rows of strings as aligned text lines: each column padded to its widest cell, two spaces between."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
