"""The plain-text tables of the commands that list things (tenants, sla, predictors).

A cell is printed as it would be typed: one holding a control character or non-ASCII text
(a tenant name stored before names were restricted to a safe set) is shown escaped, as
Python's ascii() writes it, so a stored value can never move the cursor, recolour the
terminal, reverse the line or break the columns.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["print_table", "shown"]


def shown(cell: str) -> str:
    """The cell itself when it prints as itself, else its escaped form."""
    return cell if cell.isascii() and cell.isprintable() else ascii(cell)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns two spaces apart, wide enough for every cell."""
    lines = [[shown(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
