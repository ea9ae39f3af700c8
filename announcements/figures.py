"""How Crier shows a share as a percentage, everywhere (status, weekly report, chart).

Rule: a percentage is rounded half up to a whole number, except that 100% means
everyone and 0% means no one: 199 of 200 shows as 99%, 1 of 1,000 as 1%.
"""

from __future__ import annotations


def percent(part: int, whole: int) -> int:
    """``part`` of ``whole`` as a whole percent (0 when ``whole`` is 0)."""
    if whole <= 0 or part <= 0:
        return 0
    if part >= whole:
        return 100
    rounded = (200 * part + whole) // (2 * whole)  # half up, in integers
    return min(99, max(1, rounded))


def pct(part: int, whole: int) -> str:
    """``percent`` as text, ``n/a`` when there is nothing to count."""
    return f"{percent(part, whole)}%" if whole > 0 else "n/a"
