"""The supervision of `feedloop serve`'s sidecars: a stepped clock decides when back-offs have passed, real
short-lived processes die for real."""

import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from app.server import FIRST_BACKOFF, MAX_BACKOFF, STABLE_SECONDS, Forked, Sidecar
from tests.helpers import SteppedClock

DIES = [sys.executable, "-c", "import sys; sys.exit(3)"]
LIVES = ["sleep", "30"]


class Starter:
    """Starts the given command each time, and keeps every process it started."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.started: list[subprocess.Popen] = []

    def __call__(self) -> subprocess.Popen:
        self.started.append(subprocess.Popen(self.argv))
        return self.started[-1]

    def close(self) -> None:
        for p in self.started:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)


@pytest.fixture
def starter():
    made = []

    def make(argv):
        made.append(Starter(argv))
        return made[-1]

    yield make
    for s in made:
        s.close()


def wait_dead(process: subprocess.Popen) -> None:
    process.wait(timeout=10)


def die_and_restart(sidecar: Sidecar, clock: SteppedClock) -> float:
    """Let the current process die, have check() notice it, and return the back-off it announces (then step past
    it and check that the restart happened)."""
    wait_dead(sidecar.process)
    restarts = sidecar.restarts
    sidecar.check()  # notices the death
    backoff = sidecar.backoff
    assert sidecar.restarts == restarts
    clock.advance(backoff)
    sidecar.check()
    assert sidecar.restarts == restarts + 1
    return backoff


def test_a_dead_sidecar_is_restarted_only_after_its_backoff(starter, clock, caplog):
    start = starter(DIES)
    caplog.set_level(logging.INFO, logger="feedloop.server")
    sidecar = Sidecar("learner", start, clock=clock)
    first = sidecar.process
    wait_dead(first)

    sidecar.check()  # notices the death, does not restart yet
    assert len(start.started) == 1 and sidecar.restarts == 0 and sidecar.process is first
    clock.advance(FIRST_BACKOFF / 2)
    sidecar.check()
    assert len(start.started) == 1 and sidecar.restarts == 0
    clock.advance(FIRST_BACKOFF / 2)
    sidecar.check()
    assert len(start.started) == 2 and sidecar.restarts == 1 and sidecar.process is start.started[1]
    assert sidecar.process.pid != first.pid

    deaths = [r for r in caplog.records if r.name == "feedloop.server" and "exited with 3" in r.getMessage()]
    restarts = [r for r in caplog.records if r.name == "feedloop.server" and "restarted" in r.getMessage()]
    assert len(deaths) == 1 and deaths[0].levelno == logging.ERROR and f"pid {first.pid}" in deaths[0].getMessage()
    assert "learner" in deaths[0].getMessage()
    assert len(restarts) == 1 and f"pid {sidecar.process.pid}" in restarts[0].getMessage()


def test_backoff_doubles_on_quick_deaths_up_to_the_maximum_and_resets_after_a_stable_run(starter, clock, caplog):
    start = starter(DIES)
    caplog.set_level(logging.INFO, logger="feedloop.server")
    sidecar = Sidecar("scheduler", start, clock=clock)
    backoffs = [die_and_restart(sidecar, clock) for _ in range(9)]
    expected = [min(FIRST_BACKOFF * 2**i, MAX_BACKOFF) for i in range(9)]
    assert backoffs == expected and backoffs[-1] == MAX_BACKOFF  # 1, 2, 4, ... 60, 60
    assert len(start.started) == 10

    # A run of STABLE_SECONDS before dying: the next restart waits FIRST_BACKOFF again.
    clock.advance(STABLE_SECONDS)
    assert die_and_restart(sidecar, clock) == FIRST_BACKOFF
    # ... and quick deaths after it double from there.
    assert die_and_restart(sidecar, clock) == 2 * FIRST_BACKOFF

    messages = [r.getMessage() for r in caplog.records if r.name == "feedloop.server"]
    assert sum("exited with" in m for m in messages) == 11
    assert sum("restarted" in m for m in messages) == 11


def test_a_living_sidecar_is_left_alone(starter, clock):
    start = starter(LIVES)
    sidecar = Sidecar("learner", start, clock=clock)
    for _ in range(3):
        clock.advance(MAX_BACKOFF)
        sidecar.check()
    assert len(start.started) == 1 and sidecar.restarts == 0 and sidecar.process.poll() is None
    sidecar.stop(timeout=10)


def test_stop_terminates_the_process_and_nothing_restarts_it(starter, clock):
    start = starter(LIVES)
    sidecar = Sidecar("learner", start, clock=clock)
    process = sidecar.process
    began = time.monotonic()
    sidecar.stop(timeout=10)
    assert time.monotonic() - began < 5  # terminated, not waited out
    assert process.returncode == -15  # SIGTERM
    clock.advance(MAX_BACKOFF)
    sidecar.check()
    assert len(start.started) == 1 and sidecar.restarts == 0


def test_stop_kills_a_process_that_ignores_sigterm(clock):
    ignores = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(30)"
    sidecar = Sidecar("learner", lambda: subprocess.Popen([sys.executable, "-c", ignores], stdout=subprocess.PIPE), clock=clock)
    try:
        sidecar.process.stdout.readline()  # its handler is in place
        sidecar.stop(timeout=0.5)
        assert sidecar.process.returncode == -9  # SIGKILL, and reaped
    finally:
        if sidecar.process.poll() is None:
            sidecar.process.kill()
            sidecar.process.wait(timeout=10)
        sidecar.process.stdout.close()


def test_a_failed_start_is_retried_after_a_longer_backoff(starter, clock, caplog):
    real = starter(DIES)
    failing = {"on": False}

    def start():
        if failing["on"]:
            raise OSError("no more processes")
        return real()

    caplog.set_level(logging.INFO, logger="feedloop.server")
    sidecar = Sidecar("learner", start, clock=clock)
    wait_dead(sidecar.process)
    sidecar.check()
    failing["on"] = True
    clock.advance(FIRST_BACKOFF)
    sidecar.check()  # the start fails: no exception, a retry later
    assert sidecar.restarts == 0 and sidecar.backoff == 2 * FIRST_BACKOFF
    assert any("could not be started" in r.getMessage() for r in caplog.records)
    failing["on"] = False
    clock.advance(FIRST_BACKOFF)
    sidecar.check()
    assert sidecar.restarts == 0
    clock.advance(FIRST_BACKOFF)
    sidecar.check()
    assert sidecar.restarts == 1 and len(real.started) == 2


def _exits_with_3():
    sys.exit(3)


def _refuses():
    raise click.ClickException("another learner is running on this host")


def _sleeps():
    time.sleep(30)


def test_a_forked_sidecar_reports_its_exit_status(capfd):
    assert Forked("learner", _exits_with_3, []).wait(timeout=10) == 3
    assert Forked("learner", lambda: None, []).wait(timeout=10) == 0
    assert Forked("learner", _refuses, []).wait(timeout=10) == 1
    assert "Error: another learner is running on this host" in capfd.readouterr().err


def test_a_forked_sidecar_is_named_and_stops_on_sigterm():
    sidecar = Forked("scheduler", _sleeps, [])
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/proc/{sidecar.pid}/cmdline").read_bytes().startswith(b"feedloop scheduler"):
            assert time.monotonic() < deadline, "the sidecar never took its name"
            time.sleep(0.02)
        assert sidecar.poll() is None
        sidecar.terminate()
        assert sidecar.wait(timeout=10) == -signal.SIGTERM
    finally:
        sidecar.kill()


def test_a_forked_sidecar_closes_the_servers_listening_socket():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        sidecar = Forked("learner", _sleeps, [listener])
    try:
        time.sleep(0.5)  # the child closes its copy first thing
        with socket.socket() as again:
            again.bind(("127.0.0.1", port))  # free: no process holds it any longer
    finally:
        sidecar.kill()
        sidecar.wait(timeout=10)
