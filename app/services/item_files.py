"""Reading catalogue files (JSON Lines or CSV) into rows, each with its line number."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

CSV_FIELDS = {"id", "title", "description", "category", "tags"}


class RowProblem(str):
    """A row that could not be read; the string says why."""


def detect_format(path: Path) -> str:
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def read_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict | RowProblem]]:
    reader = _csv_rows if fmt == "csv" else _jsonl_rows
    with path.open(newline="", encoding="utf-8") as f:
        yield from reader(f)


def _jsonl_rows(f) -> Iterator[tuple[int, dict | RowProblem]]:
    for line_no, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_no_constants)
        except ValueError as exc:
            yield line_no, RowProblem(f"not valid JSON ({exc})")
            continue
        yield line_no, row if isinstance(row, dict) else RowProblem("each line must be a JSON object")


def _csv_rows(f) -> Iterator[tuple[int, dict | RowProblem]]:
    """Columns id, title, description, category, tags (separated by |); any other column is an attribute."""
    reader = csv.DictReader(f)
    if not reader.fieldnames or "id" not in reader.fieldnames:
        yield 1, RowProblem("the header must name at least the columns id and title")
        return
    for row in reader:
        line_no = reader.line_num
        if None in row:
            yield line_no, RowProblem("more cells than header columns")
            continue
        item: dict = {k: v for k, v in row.items() if k in CSV_FIELDS - {"tags"} and v not in (None, "")}
        if row.get("tags"):
            item["tags"] = [t.strip() for t in row["tags"].split("|") if t.strip()]
        attributes = {k: v for k, v in row.items() if k not in CSV_FIELDS and v not in (None, "")}
        if attributes:
            item["attributes"] = attributes
        yield line_no, item


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed")
