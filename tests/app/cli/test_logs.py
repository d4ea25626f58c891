"""`feedloop logs import`: a CSV of logged decisions becomes a named dataset, or nothing is stored."""

from __future__ import annotations

from sqlmodel import Session

from app.services.datasets import load_dataset

HEADER = "timestamp,user_id,action,position,reward,propensity,ctx_device\n"
GOOD = [
    "2026-01-01T10:00:00Z,u1,a,1,1,0.5,mobile\n",
    "2026-01-01T10:00:00Z,u1,b,2,0,0.5,mobile\n",
    "2026-01-01T11:00:00,,c,,0.5,0.25,\n",
]
BAD = [
    "2026-01-01T12:00:00Z,u2,,1,1,0.5,web\n",  # line 5: no action
    "2026-01-01T12:00:00Z,u2,d,1,1,1.5,web\n",  # line 6: propensity above 1
    "2026-01-01T12:00:00Z,u2,e,1,1,,web\n",  # line 7: no propensity
]


def write(tmp_path, lines: list[str], header: str = HEADER):
    path = tmp_path / "logged.csv"
    path.write_text(header + "".join(lines), encoding="utf-8")
    return path


def stored(bare, name: str):
    with Session(bare.extensions["db_engine"]) as s:
        return load_dataset(s, name)


def test_import_stores_every_row(bare, cli, tmp_path):
    result = cli("logs", "import", write(tmp_path, GOOD), "--name", "old")
    assert "imported 3 rows" in result.output
    info, rows = stored(bare, "old")
    assert [(r.line, r.action, r.position, r.user_id) for r in rows] == [
        (2, "a", 1, "u1"),
        (3, "b", 2, "u1"),
        (4, "c", None, None),
    ]
    assert rows[0].context == {"device": "mobile"}
    assert "old\t3 rows" in cli("logs", "list").output


def test_refused_rows_are_named_by_line_and_nothing_is_stored(bare, cli, tmp_path):
    result = cli("logs", "import", write(tmp_path, GOOD + BAD), "--name", "old", ok=False)
    assert "line 5: action is missing" in result.stderr
    assert "line 6: propensity must lie in (0, 1], not '1.5'" in result.stderr
    assert "line 7: propensity is missing" in result.stderr
    assert "3 rows refused; nothing was imported" in result.stderr
    assert "no datasets yet" in cli("logs", "list").output


def test_skip_invalid_stores_the_valid_rows(bare, cli, tmp_path):
    result = cli("logs", "import", write(tmp_path, GOOD + BAD), "--name", "old", "--skip-invalid")
    assert "imported 3 rows" in result.output and "3 refused rows skipped" in result.output
    assert stored(bare, "old")[0].refused == 3


def test_a_header_without_required_columns_is_refused(bare, cli, tmp_path):
    result = cli("logs", "import", write(tmp_path, ["x,y\n"], header="timestamp,action\n"), "--name", "d", ok=False)
    assert "line 1: missing required columns reward, propensity" in result.stderr


def test_an_existing_name_needs_replace(bare, cli, tmp_path):
    cli("logs", "import", write(tmp_path, GOOD), "--name", "old")
    result = cli("logs", "import", write(tmp_path, GOOD[:1]), "--name", "old", ok=False)
    assert "exists already" in result.stderr
    cli("logs", "import", write(tmp_path, GOOD[:1]), "--name", "old", "--replace")
    assert stored(bare, "old")[0].rows == 1


def test_a_file_that_is_not_utf8_is_refused_readably(bare, cli, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "2026-01-01T10:00:00Z,u1,caf\xe9,1,1,0.5,x\n".encode("latin-1"))
    assert "not a readable UTF-8 CSV file" in cli("logs", "import", path, "--name", "d", ok=False).stderr
