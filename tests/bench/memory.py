"""Memory of `feedloop serve` (defaults: 2 workers, learner and scheduler sidecars): proportional set size (PSS,
from /proc/PID/smaps_rollup, so that pages shared between processes are counted once in all) of every process of
the server, after start-up and some traffic, with the demo catalogue (91 items, encoded at import) and with
ITEMS items (random vectors stored as if encoded).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tests.bench.service import CONTEXTS, USERS, K, build_service, served, warm_history

ITEMS = 100_000
TRAFFIC = 300  # recommendations, a reward for every third, and searches, before measuring
SETTLE_S = 20.0  # then the jobs' first runs have happened and the heaps have settled
TARGETS_MB = {"demo": 700, f"{ITEMS:,} items": 1200}
DEMO = Path(__file__).resolve().parents[2] / "demo" / "catalogue.jsonl"


def run() -> Iterator[dict]:
    columns, totals = ["process"], {}
    per_process: dict[str, dict[str, float]] = {}
    for label, prepare in (("demo", demo_home), (f"{ITEMS:,} items", large_home)):
        with tempfile.TemporaryDirectory(prefix="feedloop-memory-") as home:
            prepare(Path(home))
            with served(Path(home)) as (port, key, server):
                traffic(port, key)
                time.sleep(SETTLE_S)
                sizes = pss_by_process(server.pid)
        columns.append(f"{label} (MB)")
        totals[label] = sum(sizes.values())
        for process, mb in sizes.items():
            per_process.setdefault(process, {})[label] = mb
    rows = [[process, *(f"{mb.get(label, 0):.0f}" for label in totals)] for process, mb in per_process.items()]
    rows.append(["**all**", *(f"**{total:.0f}**" for total in totals.values())])
    yield {
        "title": "Memory of feedloop serve (PSS)",
        "columns": columns,
        "rows": rows,
        "note": "Targets: " + ", ".join(f"{label} at most {mb:,} MB" for label, mb in TARGETS_MB.items()) + ".",
    }


def demo_home(home: Path) -> None:
    feedloop = str(Path(sys.executable).with_name("feedloop"))
    env = {**os.environ, "FEEDLOOP_HOME": str(home), "FEEDLOOP_ENV": "test"}
    subprocess.run([feedloop, "init"], env=env, check=True, capture_output=True)
    subprocess.run([feedloop, "items", "import", str(DEMO)], env=env, check=True, capture_output=True)


def large_home(home: Path) -> None:
    app = build_service(home, ITEMS)
    warm_history(app, np.random.default_rng(0))
    app.extensions["db_engine"].dispose()


def traffic(port: int, key: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for n in range(TRAFFIC):
        body = {"user_id": f"user-{n % USERS}", "k": K, "context": CONTEXTS[n % len(CONTEXTS)]}
        conn.request("POST", "/api/v1/recommendations", json.dumps(body), headers)
        answer = json.loads(conn.getresponse().read())
        if n % 3 == 0 and answer.get("event_id"):
            conn.request("POST", "/api/v1/rewards", json.dumps({"event_id": answer["event_id"], "reward": 1.0}), headers)
            conn.getresponse().read()
        if n % 10 == 0:
            conn.request("GET", "/api/v1/search?q=a+quiet+weekend+walk&k=5", headers=headers)
            conn.getresponse().read()
    conn.close()


def pss_by_process(root: int) -> dict[str, float]:
    """PSS in MB of the server's master, each worker and each sidecar (`feedloop NAME`)."""
    sizes = {"gunicorn master": _pss(root)}
    workers = 0
    for pid in Path(f"/proc/{root}/task/{root}/children").read_text().split():
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        if title.startswith("feedloop "):
            name = title.removeprefix("feedloop ").strip()
        else:
            workers += 1
            name = f"worker {workers}"
        sizes[name] = _pss(int(pid))
    return sizes


def _pss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")
