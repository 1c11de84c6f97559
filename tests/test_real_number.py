"""The runtime's numeric-setting check: finite reals pass; bools, NaN, infinities and text do not."""
from __future__ import annotations

import numpy as np
import pytest

from instancevg.runtime.real_number import is_real_number


@pytest.mark.parametrize("value", [0, 1, -3, 0.5, np.float32(0.25), np.float64(2.0), np.int64(7)])
def test_finite_reals_pass(value):
    assert is_real_number(value)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), float("nan"), float("inf"), -float("inf"),
                                   np.float32("nan"), "0.5", None, [0.5], 1 + 0j])
def test_everything_else_fails(value):
    assert not is_real_number(value)
