"""Datasets of logged decisions: stored whole, refused when the name exists, replaced on request."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from app import db
from app.services.datasets import DatasetExists, UnknownDataset, list_datasets, load_dataset, store_dataset
from feedback.logs import LoggedRow


def rows(n: int, action: str = "a") -> list[LoggedRow]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [LoggedRow(i + 2, at, f"u{i}", f"{action}{i % 3}", 1 + i % 2, float(i % 2), 0.5, {"x": i}) for i in range(n)]


def test_a_dataset_is_stored_in_batches_and_read_back_in_file_order(bare):
    engine = bare.extensions["db_engine"]
    seen = []
    with db.write_session(engine) as s:
        info = store_dataset(s, "old-system", "logs.csv", iter(rows(7)), batch_size=3, on_batch=seen.append)
    assert (info.rows, seen) == (7, [3, 3, 1])
    with Session(engine) as s:
        loaded, back = load_dataset(s, "old-system")
        assert [d.name for d in list_datasets(s)] == ["old-system"]
    assert loaded.rows == 7
    assert back == rows(7)


def test_an_existing_name_is_refused_unless_replaced(bare):
    engine = bare.extensions["db_engine"]
    with db.write_session(engine) as s:
        store_dataset(s, "d", "a.csv", rows(4))
    with pytest.raises(DatasetExists), db.write_session(engine) as s:
        store_dataset(s, "d", "b.csv", rows(2, "b"))
    with db.write_session(engine) as s:
        store_dataset(s, "d", "b.csv", rows(2, "b"), replace=True)
    with Session(engine) as s:
        info, back = load_dataset(s, "d")
    assert (info.source, [r.action for r in back]) == ("b.csv", ["b0", "b1"])


def test_a_failure_midway_stores_nothing(bare):
    engine = bare.extensions["db_engine"]

    def failing():
        yield from rows(5)
        raise RuntimeError("the file went away")

    with pytest.raises(RuntimeError), db.write_session(engine) as s:
        store_dataset(s, "d", "a.csv", failing(), batch_size=2)
    with Session(engine) as s, pytest.raises(UnknownDataset):
        load_dataset(s, "d")
