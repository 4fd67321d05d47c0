"""`pyro-vlae fit --log tensorboard|mlflow`: the scalars of metrics.csv, per-layer grids, hyper-parameters."""

import csv
import json
import subprocess
import sys

import pytest
import torch
from conftest import fit_args
from conftest import run as cli

from pyro_vlae.errors import ConfigError
from pyro_vlae.models import build_model
from pyro_vlae.run_folder import LOCK
from pyro_vlae.tracking import MODULES, flat_hyperparameters, layer_grids, mlflow_uri, open_tracker

SMALL = fit_args(6)
NEEDS = '--log tensorboard needs tensorboard: pip install "pyro-vlae[tensorboard]"'


def needs_mlflow():
    for module in MODULES["mlflow"]:
        pytest.importorskip(module, reason=f'--log mlflow needs {module}: pip install "pyro-vlae[mlflow]"')


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
    tracker.log_scalars(2, {"beta": 0.5, "elbo": -10.5, "kl_z1": 1.25})
    tracker.log_scalars(4, {"beta": 1.0, "elbo": -9.0, "kl_z1": 1.5})
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
    r = cli("fit", *SMALL, "--log", "tensorboard", "--out", str(tmp_path / "run"))
    assert r.exit_code == 1 and "pyro-vlae[tensorboard]" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_fit_logs_metrics_layers_and_hyperparameters(tmp_path):
    pytest.importorskip("tensorboard", reason=NEEDS)
    plain, tracked = tmp_path / "plain", tmp_path / "tracked"
    assert cli("fit", *SMALL, "--out", str(plain)).exit_code == 0
    r = cli("fit", *SMALL, "--log", "tensorboard", "--log-images-every", "4",
            "--out", str(tracked))
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


def mlflow_run(uri, folder):
    """MLflow's client on ``uri`` and the run of the run folder ``folder``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    return client, client.get_run((folder / "mlflow" / "run-id").read_text().strip())


def history(client, run, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


def image_steps(client, run, key):
    """Steps of the time-stepped images ``key`` (MLflow names each file KEY+step+N+...)."""
    files = [f.path.split("/")[-1] for f in client.list_artifacts(run.info.run_id, "images")]
    name = key.replace("/", "~")
    return sorted({int(f.split("+")[2]) for f in files if f.startswith(f"{name}+step+") and f.endswith(".png")})


def test_mlflow_tracker_writes_with_its_own_client(tmp_path, monkeypatch):
    needs_mlflow()
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # a store of the user's choosing ...
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    monkeypatch.chdir(tmp_path)  # ... whose artifacts MLflow keeps where it likes (./mlruns)
    assert mlflow_uri(tmp_path / "run") == uri
    model = build_model("vlae", (1, 28, 28), (2, 2), None, "auto", 0.125)
    tracker = open_tracker("mlflow", tmp_path / "run")
    tracker.log_scalars(2, {"beta": 0.5, "elbo": -10.5, "kl_z1": 1.25})
    tracker.log_scalars(4, {"beta": 1.0, "elbo": -9.0, "kl_z1": 1.5})
    tracker.log_layers(4, model)
    tracker.log_hyperparameters({"lr": 0.1, "z_dims": [2, 2], "steps": 4}, {"test/elbo": -8.0})
    tracker.close()
    client, run = mlflow_run(uri, tmp_path / "run")
    assert client.get_experiment(run.info.experiment_id).name == "mine" and run.info.run_name == "run"
    assert history(client, run, "train/elbo") == [(2, -10.5), (4, -9.0)]
    assert history(client, run, "train/beta") == [(2, 0.5), (4, 1.0)]
    assert history(client, run, "test/elbo") == [(4, -8.0)]
    assert run.data.params == {"lr": "0.1", "z_dims": "2,2", "steps": "4"}
    assert image_steps(client, run, "layers/z1") == image_steps(client, run, "layers/z2") == [4]
    assert run.info.status == "FINISHED"


def test_without_mlflow_the_message_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r'(?s)--log mlflow needs the mlflow-skinny package.*pyro-vlae\[mlflow\]'):
        open_tracker("mlflow", tmp_path)
    r = cli("fit", *SMALL, "--log", "mlflow", "--out", str(tmp_path / "run"))
    assert r.exit_code == 1 and "pyro-vlae[mlflow]" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()


def test_fit_logs_to_mlflow_in_the_run_folder_and_resumes_the_same_run(tmp_path, monkeypatch):
    needs_mlflow()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    out = tmp_path / "tracked"
    r = cli("fit", *SMALL, "--log", "mlflow", "--log-images-every", "4", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert mlflow_uri(out) == f"sqlite:///{(out / 'mlflow' / 'mlflow.db').resolve()}"
    client, run = mlflow_run(mlflow_uri(out), out)
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for key in ("elbo", "beta", "recon", "kl_z1", "kl_z2"):
        assert [(s, pytest.approx(v, rel=1e-6)) for s, v in history(client, run, f"train/{key}")] == [
            (int(r["step"]), float(r[key])) for r in rows
        ]
    assert image_steps(client, run, "layers/z2") == [4, 6]  # every 4 steps and at the end
    assert {p.path for p in client.list_artifacts(run.info.run_id)} == {"images"}
    assert all(str(out.resolve()) in p for p in [run.info.artifact_uri])  # the images stay in the run folder
    config = json.loads((out / "config.json").read_text())
    assert run.data.params["lr"] == str(config["lr"]) and run.data.params["z_dims"] == "2,2"
    summary = json.loads((out / "summary.json").read_text())
    assert run.data.metrics["test/elbo"] == pytest.approx(summary["test"]["elbo"])
    assert run.info.status == "FINISHED"

    r = cli("fit", "--resume", "--steps", "8", "--log", "mlflow", "--no-progress",
            "--out", str(out))
    assert r.exit_code == 0, r.output
    client, again = mlflow_run(mlflow_uri(out), out)
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert [s for s, _ in history(client, again, "train/elbo")] == [2, 4, 6, 8]
    assert again.data.params["steps"] == "6"  # MLflow keeps a parameter's first value; config.json has 8


def test_mlflow_store_that_cannot_be_opened_is_one_message_before_anything_is_written(tmp_path, monkeypatch):
    needs_mlflow()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://store")
    out = tmp_path / "run"
    r = cli("fit", *SMALL, "--log", "mlflow", "--out", str(out))
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "cannot open the MLflow tracking store nosuchscheme://store" in r.output
    assert "MLFLOW_TRACKING_URI" in r.output
    assert not out.exists() or [p.name for p in out.iterdir()] == [LOCK]  # only the (released) lock
