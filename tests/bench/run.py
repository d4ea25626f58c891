"""Run the benchmarks and print their results as markdown: `python -m tests.bench.run [names...]` (default: all).

A benchmark is a module `tests.bench.<name>` whose `run()` yields tables, each a dict with
`title`, `columns`, `rows` and optionally `note`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

BENCHMARKS = ("encoding", "search", "recommendations", "hot_path", "mix", "memory", "freshness")
LIBRARIES = ("faiss-cpu", "torch", "sentence-transformers", "transformers", "numpy", "onnxruntime")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {', '.join(BENCHMARKS)} (default: all)")
    names = parser.parse_args(argv).names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; the benchmarks are: {', '.join(BENCHMARKS)}")
    print(machine())
    for name in names:
        print(f"\n## {name}\n")
        print(f"load average before: {load_average()}")
        start = time.perf_counter()
        for table in importlib.import_module(f"tests.bench.{name}").run():
            print(markdown(table), flush=True)
        print(f"\n{name} took {time.perf_counter() - start:.0f} s; load average after: {load_average()}")


def machine() -> str:
    """What the figures were measured on, as a markdown list."""
    cpuinfo = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines())
    cpuinfo = {key.strip(): value.strip() for key, value in cpuinfo.items()}
    flags = sorted(set(cpuinfo["flags"].split()) & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"})
    mem_kib = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    )
    lines = [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpuinfo['model name']} (family {cpuinfo['cpu family']}, model {cpuinfo['model']}), "
        f"{os.cpu_count()} cores (nproc), {' '.join(flags)}; RAM {mem_kib / 2**20:.1f} GiB",
        f"- Python {platform.python_version()}; " + ", ".join(f"{lib} {library_version(lib)}" for lib in LIBRARIES),
        f"- HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '(unset)')}",
    ]
    return "\n".join(lines)


def library_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def markdown(table: dict) -> str:
    lines = [f"\n### {table['title']}\n"]
    if table.get("note"):
        lines += [table["note"], ""]
    lines.append("| " + " | ".join(table["columns"]) + " |")
    lines.append("|" + "|".join("---" for _ in table["columns"]) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table["rows"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
