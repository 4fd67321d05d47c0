"""`pyro-vlae fit --log tensorboard`: the scalars of metrics.csv, per-layer grids, hyper-parameters."""

import csv
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from pyro_vlae.cli import main
from pyro_vlae.errors import ConfigError
from pyro_vlae.models import build_model
from pyro_vlae.tracking import flat_hyperparameters, layer_grids, open_tracker

SMALL = ["-P", "num_train=64", "-P", "num_test=16", "--z-dims", "2,2", "--width", "0.125", "--steps", "6",
         "--batch-size", "16", "--log-every", "2", "--no-progress"]
NEEDS = '--log tensorboard needs tensorboard: pip install "pyro-vlae[tensorboard]"'


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_optional_libraries_are_not_imported_by_the_core():
    code = ("import sys, pyro_vlae.cli, pyro_vlae.run, pyro_vlae.tracking, pyro_vlae.encode, pyro_vlae.explore, "
            "pyro_vlae.config_file; print(sorted(m for m in ('gradio', 'tensorboard', 'yaml', 'mlflow', "
            "'torch.utils.tensorboard') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_layer_grids_leave_the_random_stream_alone():
    model = build_model("hvae", (1, 28, 28), (2, 2), None, "auto", 0.125)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    grids = layer_grids(model, rows=2, cols=3)
    assert torch.equal(torch.rand(3), expected)
    assert set(grids) == {"z1", "z2"} and grids["z1"].shape[0] == 3
    assert torch.equal(grids["z2"], layer_grids(model, rows=2, cols=3)["z2"])  # the same draws at every step


def test_hyperparameters_are_flat_scalars():
    flat = flat_hyperparameters({"z_dims": [2, 3], "lr": 0.1, "plugin_options": {"num_train": 5}, "clip_norm": None})
    assert flat == {"z_dims": "2,3", "lr": 0.1, "plugin_options.num_train": 5, "clip_norm": "None"}


def test_tensorboard_tracker_writes_with_its_own_writer(tmp_path):
    pytest.importorskip("tensorboard", reason=NEEDS)
    model = build_model("vlae", (1, 28, 28), (2, 2), None, "auto", 0.125)
    tracker = open_tracker("tensorboard", tmp_path)
    tracker.log_row({"step": 2, "beta": "0.5", "elbo": "-10.5", "kl_z1": "1.25"})
    tracker.log_row({"step": 4, "beta": "1", "elbo": "-9", "kl_z1": "1.5"})
    tracker.log_layers(4, model)
    tracker.log_hyperparameters({"lr": 0.1, "z_dims": [2, 2]}, {"test/elbo": -8.0})
    tracker.close()
    acc = events(tmp_path / "tensorboard")
    assert [(e.step, e.value) for e in acc.Scalars("train/elbo")] == [(2, -10.5), (4, -9.0)]
    assert [e.value for e in acc.Scalars("train/beta")] == [0.5, 1.0]
    assert {"layers/z1", "layers/z2"} <= set(acc.Tags()["images"])


def test_without_tensorboard_the_message_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r'pyro-vlae\[tensorboard\]'):
        open_tracker("tensorboard", tmp_path)
    r = CliRunner().invoke(main, ["fit", *SMALL, "--log", "tensorboard", "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "pyro-vlae[tensorboard]" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_fit_logs_metrics_layers_and_hyperparameters(tmp_path):
    pytest.importorskip("tensorboard", reason=NEEDS)
    plain, tracked = tmp_path / "plain", tmp_path / "tracked"
    assert CliRunner().invoke(main, ["fit", *SMALL, "--out", str(plain)]).exit_code == 0
    r = CliRunner().invoke(main, ["fit", *SMALL, "--log", "tensorboard", "--log-images-every", "4",
                                  "--out", str(tracked)])
    assert r.exit_code == 0, r.output
    with open(tracked / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    acc = events(tracked / "tensorboard")
    for key in ("elbo", "beta", "recon", "kl_z1", "kl_z2"):
        assert [(e.step, pytest.approx(e.value, rel=1e-5)) for e in acc.Scalars(f"train/{key}")] == [
            (int(r["step"]), float(r[key])) for r in rows
        ]
    assert sorted({e.step for e in acc.Images("layers/z2")}) == [4, 6]  # every 4 steps and at the end
    hparams = events(tracked / "tensorboard")
    assert "test/elbo" in hparams.Tags()["scalars"]
    # tracking changes nothing in the run itself
    a = torch.load(plain / "checkpoint.pt", weights_only=True)["trainer"]["model"]
    b = torch.load(tracked / "checkpoint.pt", weights_only=True)["trainer"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (plain / "metrics.csv").read_text().count("\n") == (tracked / "metrics.csv").read_text().count("\n")
