"""Token times at the ends of the representable range are judged, not crashed on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from attestation._jwt import check_times
from attestation.errors import Expired, NotYetValid

AT = datetime(2025, 1, 1, tzinfo=UTC)
SKEW = timedelta(seconds=60)
LAST = 253402300799  # 9999-12-31T23:59:59Z
FIRST = -62135596800  # 0001-01-01T00:00:00Z


@pytest.mark.parametrize(
    "payload",
    [{"exp": LAST}, {"exp": LAST, "nbf": FIRST}, {"exp": LAST, "iat": FIRST}],
)
def test_extreme_but_valid_times_pass(payload: dict[str, Any]) -> None:
    check_times(payload, AT, SKEW)


def test_expired_at_the_first_representable_second() -> None:
    with pytest.raises(Expired):
        check_times({"exp": FIRST}, AT, SKEW)


def test_not_yet_valid_until_the_last_representable_second() -> None:
    with pytest.raises(NotYetValid):
        check_times({"exp": LAST, "nbf": LAST}, AT, SKEW)
