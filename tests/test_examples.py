import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "script, args, outputs",
    [
        ("svi_predictive.py", [], []),
        ("condition_layer.py", [], ["same-top-layer.png"]),
        ("semi_supervised.py", ["--labelled", "32"], []),
        ("bernoulli.py", [], ["bernoulli-samples.png", "bernoulli-layers.png"]),
    ],
)
def test_example_runs(script, args, outputs, tmp_path, monkeypatch, capsys):
    argv = [script, "--steps", "2", "--num-data", "64", *args]
    if outputs:
        argv += ["--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    printed = capsys.readouterr().out
    assert "step     1" in printed
    for name in outputs:
        assert (tmp_path / name).exists()
