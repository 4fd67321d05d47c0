"""Progress: the expected duration after the first steps, and a shorter option when it is long."""

import itertools
import types

from conftest import fit_args, run

import pyro_vlae.progress as progress_module
from pyro_vlae.progress import Progress, duration


def fake_clock(monkeypatch, seconds_per_call):
    ticks = itertools.count()
    clock = types.SimpleNamespace(perf_counter=lambda: next(ticks) * seconds_per_call)
    monkeypatch.setattr(progress_module, "time", clock)


def test_duration_reads_as_people_say_it():
    assert [duration(s) for s in (40, 12 * 60, 3 * 3600 + 20 * 60, 2.5 * 86400)] == ["40 s", "12 min", "3 h 20 min",
                                                                                     "2.5 days"]


def test_the_rest_is_forecast_once_with_advice_when_long(monkeypatch):
    fake_clock(monkeypatch, 2.0)  # each step "takes" 2 s
    lines = []
    with Progress(50000, False, lines.append, what="training", advice=lambda rate: f"try {int(rate * 600)}") as bar:
        for _ in range(10):
            bar.update()
    assert len(lines) == 1 and lines[0].startswith("training: about 27 h 47 min left for 49,996 more steps")
    assert "try 300" in lines[0]
    lines.clear()
    with Progress(20, False, lines.append, advice=lambda rate: "never") as bar:  # short, and no progress asked
        for _ in range(20):
            bar.update()
    assert lines == []


def test_fit_says_how_long_it_will_take_and_what_is_shorter(monkeypatch, tmp_path):
    fake_clock(monkeypatch, 1000.0)
    r = run("fit", *fit_args(6), "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    forecast = [line for line in r.output.splitlines() if line.startswith("training: about")]
    assert len(forecast) == 1 and "a first look: --steps" in forecast[0]
