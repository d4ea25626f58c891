import pytest

from bandit.qvalues import ALL, QTable, segment
from bandit.snapshots import Snapshot, SnapshotError, write_atomic


def test_q_moves_a_step_alpha_toward_each_reward():
    table = QTable(alpha=0.1)
    assert table.update("a", "*", 1.0) == pytest.approx(0.1)
    assert table.update("a", "*", 1.0) == pytest.approx(0.19)
    assert table.update("a", "*", 0.0) == pytest.approx(0.171)
    assert table.count("a", "*") == 3 and table.get("b", "*") == 0.0


def test_q_converges_to_the_mean_reward():
    table = QTable(alpha=0.05)
    for n in range(2000):
        table.update("a", "s", 1.0 if n % 4 == 0 else 0.0)
    assert table.get("a", "s") == pytest.approx(0.25, abs=0.05)


def test_segments_use_categorical_context_fields():
    assert segment({"device": "mobile", "age": 31, "vip": True}) == "device=mobile|vip=true"
    assert segment({"device": "mobile", "vip": True}, keys=["device"]) == "device=mobile"
    assert segment({}) == ALL


def test_table_round_trips_through_rows():
    table = QTable(alpha=0.2)
    table.update("a", "s", 1.0)
    assert QTable.from_rows(table.rows(), 0.2).get("a", "s") == pytest.approx(0.2)


def test_top_ranks_a_segments_items_by_q_and_follows_updates():
    table = QTable(alpha=0.5)
    for item, reward in (("a", 0.2), ("b", 1.0), ("c", 0.6)):
        table.update(item, "mobile", reward)
    table.update("z", "desktop", 1.0)  # another segment's favourite is not this one's
    assert table.top("mobile", 2) == ["b", "c"]  # Q: b 0.5, c 0.3, a 0.1
    table.update("a", "mobile", 1.0)  # a: 0.55
    table.update("a", "mobile", 1.0)  # a: 0.775, above b
    assert table.top("mobile", 3) == ["a", "b", "c"] and table.top("nobody", 3) == []
    assert QTable.from_rows(table.rows(), 0.5).top("mobile", 3) == ["a", "b", "c"]


def snapshot() -> Snapshot:
    return Snapshot("v3", b"\x00model-bytes", {"policy": {"bits": 18}}, [["a", "*", 0.5, 2]], {"last_reward_id": 9})


def test_snapshot_round_trip():
    back = Snapshot.from_bytes(snapshot().to_bytes())
    assert (back.version, back.model, back.qvalues, back.meta["last_reward_id"]) == (
        "v3",
        b"\x00model-bytes",
        [["a", "*", 0.5, 2]],
        9,
    )


def test_a_damaged_or_foreign_archive_is_refused():
    data = bytearray(snapshot().to_bytes())
    data[len(data) // 3] ^= 0xFF
    with pytest.raises(SnapshotError):
        Snapshot.from_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="not a feedloop model archive"):
        Snapshot.from_bytes(b"PK\x03\x04 not really")


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    write_atomic(tmp_path / "m" / "current.zip", b"abc")
    write_atomic(tmp_path / "m" / "current.zip", b"def")
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["current.zip"]
    assert (tmp_path / "m" / "current.zip").read_bytes() == b"def"
