"""What a run folder promises: logging never changes the model, metrics.csv never loses a row,
and the configuration finds its data again from anywhere."""

import csv
import json
import os

import pytest
import torch

from pyro_vlae import RunConfig
from pyro_vlae.errors import CheckpointError, DataError
from pyro_vlae.run import fit
from pyro_vlae.run_folder import METRICS, MetricsLog, load_checkpoint, load_run


def small_config(**kw):
    base = dict(
        plugin_options={"num_train": 64, "num_test": 16}, z_dims=(2, 2), width=0.125, steps=10,
        batch_size=16, warmup_steps=4, checkpoint_every=5, log_every=2, seed=3,
    )
    base.update(kw)
    return RunConfig(**base)


def quiet(_):
    pass


def model_state(folder):
    return load_checkpoint(folder)["trainer"]["model"]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_logging_does_not_change_the_model(tmp_path):
    """Runs that differ only in --log-every end bit-identical, also when resumed with another."""
    fit(small_config(log_every=2), tmp_path / "often", progress=False, echo=quiet)
    fit(small_config(log_every=7), tmp_path / "rarely", progress=False, echo=quiet)
    assert same(model_state(tmp_path / "often"), model_state(tmp_path / "rarely"))
    fit(small_config(steps=5, log_every=3), tmp_path / "resumed", progress=False, echo=quiet)
    fit(small_config(), tmp_path / "resumed", resume=True, progress=False, echo=quiet,
        overrides={"steps": 10, "log_every": 4})
    assert same(model_state(tmp_path / "often"), model_state(tmp_path / "resumed"))
    with open(tmp_path / "resumed" / METRICS) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [3, 5, 8, 10]


FIELDS = ["step", "loss", "seconds"]


def write_rows(path, steps, tail=""):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows({"step": s, "loss": s / 10, "seconds": 1} for s in steps)
        f.write(tail)


def test_metrics_resume_drops_only_rows_past_the_checkpoint_in_place(tmp_path):
    path = tmp_path / METRICS
    write_rows(path, [2, 4, 6, 8], tail="10,1.0")  # a row half-written by a kill
    before = path.read_bytes()
    inode = os.stat(path).st_ino
    log = MetricsLog(path, FIELDS, step=5)
    kept = before[: before.index(b"6,0.6")]
    assert path.read_bytes() == kept and os.stat(path).st_ino == inode  # cut in place, not rewritten
    log.write({"step": 6, "loss": 9, "seconds": 2})
    log.sync()
    assert path.read_bytes() == kept + b"6,9,2\r\n"  # written and flushed at once
    log.close()
    MetricsLog(path, FIELDS, step=6).close()  # nothing past the step: the file is not touched
    assert path.read_bytes() == kept + b"6,9,2\r\n"


def test_metrics_of_a_new_run_and_of_another_run(tmp_path):
    path = tmp_path / METRICS
    write_rows(path, [2, 4])  # left by a run killed before its first checkpoint
    MetricsLog(path, FIELDS, step=0).close()
    assert path.read_bytes() == b"step,loss,seconds\r\n"
    write_rows(path, [2, 4])
    with pytest.raises(CheckpointError, match="columns"):
        MetricsLog(path, ["step", "elbo", "seconds"], step=4)
    assert path.read_bytes().count(b"\n") == 3  # left as it was


def test_config_stores_an_absolute_data_dir_and_summary_names_the_files(tmp_path, monkeypatch):
    from tests.test_datasets import write_mnist

    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path / "cache"))
    write_mnist(tmp_path / "data" / "mnist", n_train=8, n_test=4)
    monkeypatch.chdir(tmp_path / "data")
    config = RunConfig(plugin="mnist", data_dir="mnist", plugin_options={"download": False}, z_dims=(2, 2),
                       width=0.125, steps=2, batch_size=4, log_every=2)
    out = fit(config, tmp_path / "run", progress=False, echo=quiet)
    saved = json.loads((out / "config.json").read_text())
    assert saved["data_dir"] == str(tmp_path / "data" / "mnist")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["files"] == sorted(
        str(tmp_path / "data" / "mnist" / f"{n}.gz")
        for n in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                  "train-labels-idx1-ubyte"]
    )
    monkeypatch.chdir(tmp_path)  # another folder: the run still finds its data
    assert load_run(out).plugin.load("test").x.shape == (4, 1, 28, 28)
    (tmp_path / "data" / "mnist").rename(tmp_path / "data" / "moved")
    with pytest.raises(DataError, match="trained on the data in .*mnist, which no longer exists"):
        load_run(out).plugin.load("test")
