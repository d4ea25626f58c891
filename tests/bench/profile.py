"""Where a running `feedloop serve` spends its time: py-spy samples its workers while a benchmark drives it, and
the samples are summed by the module of the innermost Python frame (a C extension's time counts for the Python
line that called it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def workers(server_pid: int) -> list[int]:
    """The gunicorn workers of a `feedloop serve` master (its other children are the sidecars, `feedloop NAME`)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(pid) for pid in children if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"feedloop ")]


def spy(pids: list[int], seconds: int, out: Path) -> list[subprocess.Popen] | None:
    """Start sampling each pid for `seconds` (None when py-spy is missing); raw collapsed stacks go to OUT.N."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        return None
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--nonblocking",
                "--full-filenames",
                "-r",
                "200",
                "-d",
                str(seconds),
                "-f",
                "raw",
                "-o",
                f"{out}.{n}",
                "-p",
                str(pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n, pid in enumerate(pids)
    ]


def breakdown(files: list[Path], top: int = 15) -> tuple[list[list], list[list]]:
    """Rows of (where, share of samples) over the collapsed stacks in `files`, largest first: by package (our
    code by module), and by function."""
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            package, function = _where(stack.rsplit(";", 1)[-1])
            packages[package] += int(count)
            functions[f"{package} {function}"] += int(count)
    return _shares(packages, top), _shares(functions, top)


def _shares(counts: Counter[str], top: int) -> list[list]:
    total = sum(counts.values()) or 1
    rows = [[name, f"{100 * n / total:.1f}%"] for name, n in counts.most_common(top)]
    rest = total - sum(n for _, n in counts.most_common(top))
    return rows + ([["everything else", f"{100 * rest / total:.1f}%"]] if rest else [])


def _where(frame: str) -> tuple[str, str]:
    """`recommend (/…/app/services/recommender.py:95)` → (app/services/recommender.py, recommend); a library's
    frame → its package (sqlalchemy, execute)."""
    function, _, location = frame.partition(" (")
    path = Path(location.rsplit(":", 1)[0])
    if path.is_relative_to(ROOT) and "site-packages" not in path.parts:
        return str(path.relative_to(ROOT)), function
    parts = path.parts
    package = parts[parts.index("site-packages") + 1] if "site-packages" in parts else path.stem
    return package.removesuffix(".py"), function
