"""How long a model worker waits before trying Triton again.

Exponential and capped, so a short blip costs a second and a long outage is not hammered;
with "equal jitter" (each wait drawn between half and all of its ceiling), so the chunks
that failed together do not all come back in the same instant, while the retries of one
chunk still span at least half the sum of the ceilings. That lower bound is what makes
the outage a worker rides out a documented figure: with the defaults (8 retries, 1 s
doubling to at most 30 s) the retries of a chunk span 60.5 to 121 s.
"""

from __future__ import annotations

__all__ = ["retry_delay_s"]


def retry_delay_s(retries: int, base_s: float, max_s: float, draw: float) -> float:
    """The wait before retry number `retries + 1`; `draw` is uniform in [0, 1)."""
    if retries < 0 or not 0 <= draw < 1:
        raise ValueError(f"need retries >= 0 and draw in [0, 1), got {retries}, {draw}")
    ceiling_s = min(max_s, base_s * 2.0 ** min(retries, 64))
    return ceiling_s * (0.5 + 0.5 * draw)
