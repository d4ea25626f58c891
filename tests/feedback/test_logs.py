"""Rows of logged decisions from other systems: typed, or refused with every reason and the line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedback.logs import LoggedRow, Refused, check_header, parse_row

GOOD = {
    "timestamp": "2026-01-05T10:00:00+01:00",
    "user_id": "u1",
    "action": "i7",
    "position": "2",
    "reward": "1",
    "propensity": "0.25",
    "ctx_device": "mobile",
    "ctx_age": "31",
    "ctx_score": "0.5",
}


def test_a_good_row_is_typed_with_context_numbers_kept_as_numbers():
    row = parse_row(3, GOOD)
    assert row == LoggedRow(
        3,
        datetime(2026, 1, 5, 9, tzinfo=UTC),
        "u1",
        "i7",
        2,
        1.0,
        0.25,
        {"device": "mobile", "age": 31, "score": 0.5},
    )


def test_optional_columns_may_be_empty_and_a_timestamp_without_zone_is_utc():
    row = parse_row(2, GOOD | {"user_id": "", "position": "", "ctx_device": "", "timestamp": "2026-01-05 10:00"})
    assert isinstance(row, LoggedRow)
    assert (row.user_id, row.position, row.timestamp) == (None, None, datetime(2026, 1, 5, 10, tzinfo=UTC))
    assert "device" not in row.context
    assert parse_row(2, GOOD | {"timestamp": "2026-01-05T10:00:00Z"}).timestamp.hour == 10


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({"action": ""}, "action is missing"),
        ({"propensity": ""}, "propensity is missing"),
        ({"propensity": "0"}, "propensity must lie in (0, 1]"),
        ({"propensity": "1.5"}, "propensity must lie in (0, 1]"),
        ({"propensity": "nan"}, "propensity must lie in (0, 1]"),
        ({"propensity": "-0.2"}, "propensity must lie in (0, 1]"),
        ({"reward": "inf"}, "reward must be a finite number"),
        ({"reward": "1e999"}, "reward must be a finite number"),
        ({"reward": ""}, "reward must be a finite number"),
        ({"timestamp": "yesterday"}, "timestamp is not ISO-8601"),
        ({"timestamp": ""}, "timestamp is missing"),
        ({"position": "0"}, "position must be a whole number from 1"),
        ({"position": "1.5"}, "position must be a whole number from 1"),
    ],
)
def test_bad_rows_are_refused_with_their_line_and_reason(cells, reason):
    refused = parse_row(9, GOOD | cells)
    assert isinstance(refused, Refused)
    assert refused.line == 9
    assert any(r.startswith(reason) for r in refused.reasons), refused.reasons
    assert str(refused).startswith("line 9: ")


def test_every_reason_of_a_row_is_given():
    refused = parse_row(4, GOOD | {"action": "", "propensity": "2"})
    assert len(refused.reasons) == 2


def test_a_propensity_of_one_is_allowed():
    assert parse_row(2, GOOD | {"propensity": "1"}).propensity == 1.0


def test_a_row_with_more_cells_than_columns_is_refused():
    assert "more cells than header columns" in parse_row(2, GOOD | {None: ["x"]}).reasons


def test_header_check_names_missing_required_columns():
    assert check_header(list(GOOD)) == []
    assert check_header(["timestamp", "action", "ctx_x"]) == ["missing required columns reward, propensity"]
    assert check_header(None) == ["missing required columns timestamp, action, reward, propensity"]
    assert "columns named more than once: action" in check_header(["timestamp", "action", "action", "reward", "propensity"])
    assert check_header(["timestamp", "action", "reward", "propensity", "device"])[0].startswith("unknown columns")
