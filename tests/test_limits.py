"""Limits refuse values no run could honour: NaN and infinities included (issue 14, class 3)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hch.limits import Limits

FLOAT_FIELDS = [name for name, field in Limits.model_fields.items() if "float" in str(field.annotation)]


def test_the_float_limits_are_the_timeouts_and_the_cost() -> None:
    assert set(FLOAT_FIELDS) == {"node_timeout", "run_timeout", "max_cost"}


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "nan", "Infinity"])
def test_every_float_limit_refuses_nan_and_infinities(field: str, value: float | str) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        Limits.model_validate({field: value})


def test_limits_from_json_refuse_nan_too() -> None:
    with pytest.raises(ValidationError, match="finite number"):
        Limits.model_validate_json('{"max_cost": NaN}')
    assert Limits.model_validate_json('{"max_cost": 1.5}').max_cost == 1.5
