"""The README's path end to end: init, create a key, `feedloop serve` (gunicorn), upload, search, learn, run
jobs, restart."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

FEEDLOOP = str(Path(sys.executable).with_name("feedloop"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, key: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def sidecar_pids(server_pid: int, role: str = "learner") -> set[int]:
    """The server's children named `feedloop ROLE` (a sidecar)."""
    pids = set()
    for children in Path(f"/proc/{server_pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            pids.update(int(pid) for pid in children.read_text().split())
    found = set()
    for pid in pids:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        if title.startswith(f"feedloop {role}".encode()):
            found.add(pid)
    return found


def wait_for(what: str, predicate, seconds: float, pause: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(pause)
    pytest.fail(f"{what} within {seconds:.0f} s")


def job_runs(env: dict, job: str = "reindex") -> list[str]:
    """The recent runs of one job, as `feedloop jobs list` prints them under the job's name."""
    done = subprocess.run([FEEDLOOP, "jobs", "list"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listing = done.stdout
    runs, current = [], None
    for line in listing.splitlines():
        if not line.startswith("  "):
            current = line.split("\t")[0]
        elif current == job:
            runs.append(line)
    return runs


class Server:
    def __init__(self, env: dict, port: int, *flags: str):
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [FEEDLOOP, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2", *flags],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()[-2000:]
            try:
                if call(self.base + "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail("feedloop serve did not become ready within 120 s")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.slow
def test_serve_upload_search_and_restart(tmp_path, database_url):
    env = {**os.environ, "FEEDLOOP_HOME": str(tmp_path / "home"), "FEEDLOOP_DATABASE_URL": database_url}
    subprocess.run([FEEDLOOP, "init"], env=env, check=True, capture_output=True)
    created = subprocess.run([FEEDLOOP, "keys", "create", "--name", "e2e"], env=env, check=True, capture_output=True, text=True)
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()

    server = Server(env, port)
    try:
        assert call(server.base + "/api/v1/search?q=x", None)[0] == 401
        items = [{"id": "kayak", "title": "Inflatable sea kayak"}, {"id": "tent", "title": "Two-person camping tent"}]
        assert call(server.base + "/api/v1/items", key, {"items": items}) == (200, {"upserted": 2, "errors": []})
        # Several requests, so that both workers answer: each must see the new items at once.
        for _ in range(6):
            status, body = call(server.base + "/api/v1/search?q=paddle%20boat&k=1", key)
            assert status == 200 and body["items"][0]["id"] == "kayak"

        # The embedded learner: once it runs, a posted reward reaches the model that serves the next requests.
        wait_for(
            "the learner sidecar never reported in",
            lambda: call(server.base + "/healthz")[1]["checks"]["learner"]["status"] == "ok",
            60,
        )
        status, first = call(server.base + "/api/v1/recommendations", key, {"user_id": "u1", "k": 1})
        assert status == 200 and first["model_version"] == "v0"
        assert call(server.base + "/api/v1/rewards", key, {"event_id": first["event_id"], "reward": 1.0})[0] == 202
        posted = time.monotonic()
        versions = set()
        while time.monotonic() - posted < 5 and len(versions - {"v0"}) == 0:
            versions.add(call(server.base + "/api/v1/recommendations", key, {"user_id": "u1", "k": 1})[1]["model_version"])
        assert versions - {"v0"}, "no worker picked up a new model within 5 s"

        # /healthz reports the learner: alive, with its lag.
        status, health = call(server.base + "/healthz")
        assert status == 200 and health["checks"]["learner"]["status"] == "ok", health
        assert isinstance(health["checks"]["learner"]["lag_seconds"], (int, float))
        assert health["checks"]["learner"]["heartbeat_age_seconds"] < 10

        # The master restarts a learner that dies: killed, it comes back, and rewards reach the model again.
        [old_learner] = sidecar_pids(server.proc.pid)
        os.kill(old_learner, signal.SIGKILL)
        [new_learner] = wait_for(
            "no new learner process ran", lambda: sidecar_pids(server.proc.pid) - {old_learner} or None, 60, 0.5
        )
        assert Path(f"/proc/{new_learner}").exists()
        served = {v for v in versions if v != "v0"}
        status, second = call(server.base + "/api/v1/recommendations", key, {"user_id": "u2", "k": 1})
        assert status == 200
        assert call(server.base + "/api/v1/rewards", key, {"event_id": second["event_id"], "reward": 1.0})[0] == 202

        def newer_model():
            version = call(server.base + "/api/v1/recommendations", key, {"user_id": "u2", "k": 1})[1]["model_version"]
            return version not in served | {"v0"}

        wait_for("the restarted learner published no new model", newer_model, 90, 0.3)
        assert sidecar_pids(server.proc.pid) == {new_learner}  # one learner, the new one
        status, health = call(server.base + "/healthz")
        assert status == 200 and health["checks"]["learner"]["status"] == "ok", health

        # The embedded scheduler: its first reindex run, at start-up, is in the job log.
        deadline = time.monotonic() + 60
        while not any("\tok\t" in run for run in job_runs(env)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert any("\tok\t" in run for run in job_runs(env))
    finally:
        server.stop()

    # Restarted as one host of the scaled layout: it serves what was stored, and runs no jobs.
    before = job_runs(env)
    server = Server(env, port, "--no-learner", "--no-scheduler")
    try:
        status, body = call(server.base + "/api/v1/search?q=sleeping%20outdoors&k=1", key)
        assert status == 200 and body["items"][0]["id"] == "tent"
        # Ready, and no sidecar was started, so nothing here learns or runs jobs (the scheduler would have run
        # its start-up reindex by now, and the server starts sidecars before it answers).
        assert sidecar_pids(server.proc.pid, "learner") == sidecar_pids(server.proc.pid, "scheduler") == set()
        assert job_runs(env) == before
    finally:
        server.stop()


def test_the_development_server_refuses_a_public_address(cli):
    for host in ["0.0.0.0", "192.168.1.10", "::"]:
        result = cli("serve", "--dev", "--host", host, ok=False)
        assert "--dev" in result.output and "loopback" in result.output and host in result.output
