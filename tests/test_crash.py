"""`kill -9` during training, at random moments, in a checkpoint write and right after a resume;
SIGINT, SIGTERM and SIGHUP in the middle of a step; a closed output pipe: resuming ends with the
model of an uninterrupted run and every logged row exactly once."""

import csv
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import fit_args

from pyro_vlae.run_folder import CHECKPOINT, METRICS, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STEPS, LOG_EVERY, CHECKPOINT_EVERY = 240, 20, 25  # long enough that a random kill lands mid-run on a fast machine
FIT = ["fit", *fit_args(STEPS, log_every=LOG_EVERY), "--warmup-steps", "10",
       "--checkpoint-every", str(CHECKPOINT_EVERY), "--seed", "5"]

#: the real command line, in a process that can be told to pause (marker file, then sleep) at a
#: vulnerable moment, so the test kills it exactly there: PAUSE=checkpoint inside a checkpoint
#: write (the temporary file written, not yet renamed), PAUSE=metrics right after a resumed run
#: opened metrics.csv, before its first new row; or that sends itself a signal in the middle of
#: a step (PAUSE=signal:SIGTERM:12)
DRIVER = """
import os, signal, sys, time, torch
torch.set_num_threads(1)
from pyro_vlae import metrics_log
from pyro_vlae.cli import main
from pyro_vlae.train.trainer import Trainer

pause, marker = os.environ.get("PAUSE"), os.environ.get("MARKER")

def paused():
    open(marker, "w").close()
    time.sleep(60)

if pause == "checkpoint":
    save = torch.save
    def slow_save(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)
        if isinstance(obj, dict) and "trainer" in obj:
            paused()
    torch.save = slow_save
elif pause == "metrics":
    init = metrics_log.MetricsLog.__init__
    def slow_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        paused()
    metrics_log.MetricsLog.__init__ = slow_init
elif pause.startswith("signal:"):  # signal:NAME:STEP: the signal in step STEP + 1, between backward and Adam
    name, at = pause.split(":")[1:]
    clip_and_step = Trainer._clip_and_step
    def signalled(self):
        if self.step_count == int(at):
            os.kill(os.getpid(), getattr(signal, name))
        clip_and_step(self)
    Trainer._clip_and_step = signalled
main(sys.argv[1:], prog_name="pyro-vlae")
"""


def start(out: Path, resume: bool, pause: str | None = None, fit: list[str] = FIT) -> subprocess.Popen:
    """``pyro-vlae fit`` in a process of its own; its output lines collect in ``proc.lines``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MARKER": str(out.parent / "paused"),
           "PAUSE": pause or ""}
    args = [sys.executable, "-c", DRIVER, *fit, "--out", str(out), *(["--resume"] if resume else [])]
    proc = subprocess.Popen(args, env=env, cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    proc.lines = []
    proc.reader = threading.Thread(target=lambda: proc.lines.extend(proc.stdout), daemon=True)
    proc.reader.start()
    return proc


def training(proc: subprocess.Popen) -> bool:
    """Whether the process has printed its banner (model built, the loop about to start)."""
    return any(line.startswith("pyro-vlae ") for line in list(proc.lines))


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> bool:
    """Poll until ``predicate()``; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.02)
    raise TimeoutError("the fit process neither reached the moment nor ended")


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    finish(proc)


def finish(proc: subprocess.Popen) -> str:
    proc.wait()
    proc.reader.join()
    return "".join(proc.lines)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference" / "run"
    reference.parent.mkdir()
    uninterrupted = start(reference, resume=False)
    out = tmp_path / "killed" / "run"
    out.parent.mkdir()
    marker = out.parent / "paused"
    rng = random.Random(11)
    kills = []
    # where each run is killed: random moments, inside a checkpoint write, right after a resume
    for moment in ["random", "checkpoint", "random", "metrics", "random", "checkpoint", "random"]:
        resume = (out / CHECKPOINT).exists()
        if moment == "metrics" and not resume:
            moment = "random"
        marker.unlink(missing_ok=True)
        proc = start(out, resume, pause=moment if moment != "random" else None)
        if moment == "random":
            if wait_for(lambda p=proc: training(p), proc):
                time.sleep(rng.uniform(0.0, 1.0))
        else:
            wait_for(marker.exists, proc)
        finished = proc.poll() == 0
        kill(proc)
        if finished:
            break
        step = load_checkpoint(out)["trainer"]["step"] if (out / CHECKPOINT).exists() else None
        kills.append((moment, step))
    final = start(out, resume=(out / CHECKPOINT).exists())
    output = finish(final)
    assert final.returncode == 0, output
    output = finish(uninterrupted)
    assert uninterrupted.returncode == 0, output
    assert len(kills) >= 5, kills  # most of the schedule was killed before the run could finish

    a, b = load_checkpoint(reference)["trainer"]["model"], load_checkpoint(out)["trainer"]["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), kills
    got, expected = rows(out / METRICS), rows(reference / METRICS)
    steps = [int(r["step"]) for r in got]
    assert steps == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY)), (steps, kills)  # each row once
    assert got == expected, kills  # the same numbers as the uninterrupted run's


# ------------------------------------------------------------------------ signals and pipes
SHORT = 30
FIT_SHORT = ["fit", *fit_args(SHORT, log_every=10), "--warmup-steps", "10", "--checkpoint-every", "25", "--seed", "5"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    proc = start(out, resume=False, fit=FIT_SHORT)
    output = finish(proc)
    assert proc.returncode == 0, output
    return out


def assert_same_run(out: Path, reference: Path) -> None:
    a, b = load_checkpoint(reference)["trainer"], load_checkpoint(out)["trainer"]
    assert a["step"] == b["step"] == SHORT
    assert a["model"].keys() == b["model"].keys()
    differ = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert differ == []
    assert rows(out / METRICS) == rows(reference / METRICS)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_in_the_middle_of_a_step_finishes_it_saves_it_and_resumes_bit_identical(
    tmp_path, uninterrupted, name
):
    out = tmp_path / "run"
    proc = start(out, resume=False, pause=f"signal:{name}:12", fit=FIT_SHORT)
    output = finish(proc)
    assert proc.returncode == 128 + getattr(signal, name), output
    assert f"stopped by {name} after step 13 of {SHORT}" in output
    assert "Traceback" not in output
    assert load_checkpoint(out)["trainer"]["step"] == 13  # the step in progress, finished
    proc = start(out, resume=True, fit=FIT_SHORT)
    output = finish(proc)
    assert proc.returncode == 0, output
    assert_same_run(out, uninterrupted)


def test_a_closed_output_pipe_stops_after_the_step_with_its_checkpoint(tmp_path, uninterrupted):
    """``pyro-vlae fit ... | head -1``: the reader is gone before the first line."""
    out = tmp_path / "run"
    read, write = os.pipe()
    os.close(read)
    with open(write, "w") as pipe:
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, *FIT_SHORT, "--out", str(out)], cwd=tmp_path, stdout=pipe,
            stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PAUSE": ""},
        )
    _, errors = proc.communicate()
    assert proc.returncode == 128 + signal.SIGPIPE, errors
    assert f"stopped by a closed output pipe after step 1 of {SHORT}" in errors
    assert "Traceback" not in errors and "Exception ignored" not in errors
    assert load_checkpoint(out)["trainer"]["step"] == 1
    proc = start(out, resume=True, fit=FIT_SHORT)
    output = finish(proc)
    assert proc.returncode == 0, output
    assert_same_run(out, uninterrupted)


# ------------------------------------------------------------------------- a second process
def refused(out: Path, *args: str) -> str:
    """``pyro-vlae fit`` on ``out`` in a second process, which must be refused at once."""
    proc = subprocess.run([sys.executable, "-m", "pyro_vlae", *args, "--out", str(out)], cwd=out.parent,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_a_second_process_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    marker = tmp_path / "paused"
    for resume in (False, True):  # a new run, then a resumed one, held open while a second one starts
        fit = FIT_SHORT if not resume else [*FIT_SHORT, "--steps", str(SHORT + 10)]
        first = start(out, resume, pause="metrics", fit=fit)
        assert wait_for(marker.exists, first), finish(first)
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        message = refused(out, *fit, *(["--resume"] if resume else []))
        assert f"{out} is in use by another pyro-vlae process (`fit`, process {first.pid}" in message
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
        kill(first)  # a crash: the operating system releases its lock
        marker.unlink()
        proc = start(out, resume, fit=fit)
        output = finish(proc)
        assert proc.returncode == 0, output
    steps = [int(r["step"]) for r in rows(out / METRICS)]
    assert steps == list(range(10, SHORT + 11, 10))  # every row once
