import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from feedback.windows import (
    Activity,
    Bucket,
    activity,
    admissible,
    bucketize,
    click_rate,
    counts,
    features,
    minute_of,
    parse_reward_map,
    recent_categories,
    reward_for,
    window_minutes,
)

NOW = datetime(2026, 11, 27, 12, 30, 40, tzinfo=UTC)


def at(minutes_ago: float, seconds: int = 0) -> datetime:
    return NOW - timedelta(minutes=minutes_ago, seconds=seconds)


def test_a_minute_starts_at_its_first_second_in_utc():
    paris = timezone(timedelta(hours=1))
    assert minute_of(datetime(2026, 11, 27, 13, 30, 59, 999, tzinfo=paris)) == datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        minute_of(datetime(2026, 11, 27, 12, 30))


def test_a_five_minute_window_holds_the_current_minute_and_the_four_before():
    assert window_minutes(NOW, timedelta(minutes=5)) == (
        datetime(2026, 11, 27, 12, 26, tzinfo=UTC),
        datetime(2026, 11, 27, 12, 30, tzinfo=UTC),
    )


def test_counts_per_window_from_hand_made_buckets():
    m = minute_of(NOW)
    buckets = [
        Bucket(m, "click", 2),
        Bucket(m - timedelta(minutes=4), "impression", 3),  # first minute of the 5-minute window
        Bucket(m - timedelta(minutes=5), "impression", 7),  # just outside it, inside the hour
        Bucket(m - timedelta(minutes=59), "purchase", 1),  # last minute inside the hour
        Bucket(m - timedelta(minutes=60), "click", 4),  # outside the hour, inside the day
        Bucket(m - timedelta(days=1), "click", 100),  # outside the day
        Bucket(m + timedelta(minutes=1), "click", 50),  # after now: not seen yet
        Bucket(m, "click", 9, category="shoes"),  # category rows never add to the totals
    ]
    assert counts(buckets, NOW, timedelta(minutes=5)) == {"click": 2, "impression": 3}
    assert counts(buckets, NOW, timedelta(hours=1)) == {"click": 2, "impression": 10, "purchase": 1}
    assert counts(buckets, NOW, timedelta(days=1)) == {"click": 6, "impression": 10, "purchase": 1}


def test_bucketize_counts_totals_and_category_rows_per_minute():
    buckets = bucketize([(at(0), "click", "shoes"), (at(0, 10), "click", None), (at(2), "impression", "shoes")])
    m = minute_of(NOW)
    assert buckets == [
        Bucket(m - timedelta(minutes=2), "impression", 1),
        Bucket(m - timedelta(minutes=2), "impression", 1, "shoes"),
        Bucket(m, "click", 2),
        Bucket(m, "click", 1, "shoes"),
    ]


def test_a_late_event_inside_the_window_counts_like_a_timely_one():
    timely = bucketize([(at(30), "click", None), (at(1), "click", None)])
    # The same events, the first arriving 20 minutes late: its bucket is the minute it happened in.
    late = bucketize([(at(1), "click", None)]) + bucketize([(at(30), "click", None)])
    assert activity(timely, NOW) == activity(late, NOW)
    assert activity(late, NOW).counts["1h"] == {"click": 2}


def test_click_rate_is_clicks_per_impression_and_none_without_impressions():
    assert click_rate({"impression": 8, "click": 2}) == 0.25
    assert click_rate({"click": 3}) is None
    assert click_rate({"impression": 2, "click": 5}) == 1.0  # clicks without impressions cannot make it exceed 1


def test_recent_categories_are_the_engaged_ones_most_first():
    buckets = bucketize(
        [(at(1), "click", "books")]
        + [(at(2), "purchase", "shoes")] * 2
        + [(at(3), "impression", "hats")] * 5  # seen, not engaged
        + [(at(60 * 25), "click", "old")]  # outside the day
    )
    assert recent_categories(buckets, NOW) == ["shoes", "books"]
    assert recent_categories(buckets, NOW, limit=1) == ["shoes"]


def test_features_have_stable_names_and_bounded_values():
    empty = features("user", activity([], NOW))
    busy = features("user", activity(bucketize([(at(0), "impression", "a b|c")] * 4 + [(at(0), "click", "a b|c")]), NOW))
    assert set(busy) - set(empty) == {"user_cat_a_b_c"}
    assert len(empty) == 3 * (4 + 2)
    assert empty["user_ctr_1h"] == 0.0 and empty["user_has_ctr_1h"] == 0.0
    assert busy["user_ctr_5m"] == 0.25 and busy["user_has_ctr_5m"] == 1.0
    assert busy["user_impression_1d"] == pytest.approx(math.log(5))
    huge = features("item", Activity(counts={"5m": {"click": 10**12}, "1h": {}, "1d": {}}))
    assert huge["item_click_5m"] == pytest.approx(math.log1p(10_000))
    assert all(math.isfinite(v) and 0 <= v <= 10 for v in busy.values())


@pytest.mark.parametrize(
    ("seconds_ago", "refused"),
    [(0, False), (86_400, False), (86_401, True), (-300, False), (-301, True)],
)
def test_events_outside_lateness_or_future_tolerance_are_refused(seconds_ago, refused):
    why = admissible(NOW - timedelta(seconds=seconds_ago), NOW, timedelta(days=1), timedelta(minutes=5))
    assert (why is not None) is refused


def test_a_reward_map_parses_and_takes_the_largest_mapped_value():
    mapping = parse_reward_map(" purchase=1.0, click=0.3 ,")
    assert mapping == {"purchase": 1.0, "click": 0.3}
    assert reward_for(["impression", "click", "purchase"], mapping) == 1.0
    assert reward_for(["click"], mapping) == 0.3
    assert reward_for(["impression"], mapping) is None
    assert parse_reward_map("") == {}


@pytest.mark.parametrize("text", ["click", "click=", "=1", "click=x", "click=nan", "click=1e999", "click=1,click=2"])
def test_a_malformed_reward_map_is_refused(text):
    with pytest.raises(ValueError):
        parse_reward_map(text)
