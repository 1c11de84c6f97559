"""The one check behind every numeric setting the runtime reads (thresholds, manifest fields):
a finite real number, where a bool does not count (``True`` would otherwise pass as 1)."""
from __future__ import annotations

import math
import numbers


def is_real_number(value) -> bool:
    """True for a finite int or float, NumPy scalars included; False for bools (Python and NumPy),
    NaN, infinities, strings and everything else. Raises nothing."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
