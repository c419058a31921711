"""PollutionField.create's value checks, which every decoded snapshot goes through.

The check is two reductions (min and max) rather than elementwise masks; these tests pin
that it refuses exactly what the masks refused, wherever the bad value sits (NumPy's
reductions run in SIMD blocks with a scalar tail, so first, middle and last positions of
odd-sized arrays are all tried), and that the messages still count the bad values.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from airpath import PollutionField
from airpath.errors import FieldError

T0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
N_EDGES = 1001


def _create(values: np.ndarray, *, unc: np.ndarray | None = None) -> PollutionField:
    n = values.shape[-1]
    ok = np.ones_like(values)
    return PollutionField.create(
        "v",
        T0,
        {"no2": values, "pm25": ok},
        n_edges=n,
        horizons_min=(0.0, 15.0, 30.0),
        uncertainty_ugm3={"no2": ok if unc is None else unc},
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (1, 500), (2, N_EDGES - 1), (2, N_EDGES - 8)])
def test_nan_and_infinities_are_refused_anywhere(
    dtype: type, value: float, where: tuple[int, int]
) -> None:
    arr = np.full((3, N_EDGES), 12.5, dtype=dtype)
    arr[where] = value
    with pytest.raises(FieldError, match="no2: 1 NaN or infinite values"):
        _create(arr)
    with pytest.raises(FieldError, match="no2 uncertainty: 1 NaN or infinite values"):
        _create(np.ones((3, N_EDGES)), unc=arr)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("where", [(0, 0), (1, 500), (2, N_EDGES - 1)])
def test_negative_values_are_refused_anywhere(dtype: type, where: tuple[int, int]) -> None:
    arr = np.full((3, N_EDGES), 12.5, dtype=dtype)
    arr[where] = -1e-30
    with pytest.raises(FieldError, match="no2: 1 negative concentrations"):
        _create(arr)
    with pytest.raises(FieldError, match="no2 uncertainty: 1 negative"):
        _create(np.ones((3, N_EDGES)), unc=arr)


def test_messages_count_and_name_nan_before_negatives() -> None:
    arr = np.full((3, N_EDGES), 1.0)
    arr[0, :3] = -2.0
    with pytest.raises(FieldError, match="3 negative concentrations"):
        _create(arr)
    arr[1, 7] = np.nan
    arr[2, 9] = np.inf
    with pytest.raises(FieldError, match="2 NaN or infinite values"):
        _create(arr)


def test_zero_negative_zero_and_the_largest_floats_are_accepted() -> None:
    arr = np.zeros((3, N_EDGES))
    arr[0, 1] = -0.0
    arr[1, 2] = np.finfo(np.float64).max
    fld = _create(arr)
    assert fld.concentration_ugm3["no2"][1, 2] == np.finfo(np.float64).max
    assert _create(np.zeros((3, 0))).concentration_ugm3["no2"].shape == (3, 0)


def test_values_are_private_read_only_float64_copies() -> None:
    src = np.full((3, N_EDGES), 3.0, dtype=np.float32)
    fld = _create(src)
    src[...] = 99.0
    got = fld.concentration_ugm3["no2"]
    assert got.dtype == np.float64
    assert float(got.max()) == 3.0
    assert not got.flags.writeable
