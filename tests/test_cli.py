import json
import os

import pytest
import torch
from conftest import fit_args, run

from pyro_vlae.cli import main

SMALL = fit_args(6, num_train=96, num_test=32, log_every=3)


def test_fit_smoke(tmp_path):
    out = tmp_path / "run"
    r = run("fit", *SMALL, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "test ELBO" in r.output and (out / "layers.png").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["z_dims"] == [2, 2] and config["plugin"] == "shapes" and config["steps"] == 6
    r = run("fit", "--resume", "--out", str(out), "--steps", "9", "--no-progress")
    assert r.exit_code == 0, r.output
    assert torch.load(out / "checkpoint.pt", weights_only=True)["trainer"]["step"] == 9


def test_help_explains_options():
    r = run("fit", "--help")
    for option in ["--plugin", "--model", "--likelihood", "--z-dims", "--steps", "--epochs", "--batch-size",
                   "--lr", "--warmup-steps", "--device", "--seed", "--out", "--data-dir", "--resume"]:
        assert option in r.output


def test_plugins_lists_builtins():
    r = run("plugins")
    assert r.exit_code == 0
    assert "shapes" in r.output and "gaussian" in r.output and "bernoulli" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--plugin", "nope"], "unknown dataset plugin 'nope'"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--likelihood", "nope"], "unknown likelihood plugin 'nope'"),
        (["--likelihood", "bernoulli"], "continuous data"),
        (["--z-dims", "2,x"], "comma-separated"),
        (["--batch-size", "1"], "batch-size must be at least 2"),
        (["--lr", "-1"], "--lr must be positive"),
    ],
)
def test_bad_input_gives_one_clear_message(tmp_path, args, message):
    r = run("fit", *SMALL, "--out", str(tmp_path / "x"), *args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output


def test_corrupt_checkpoint_and_existing_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"garbage")
    r = run("fit", "--resume", "--out", str(out), "--no-progress")
    assert r.exit_code == 1 and "corrupt" in r.output
    r = run("fit", *SMALL, "--out", str(out))
    assert r.exit_code == 1 and "already holds a run" in r.output
    assert (out / "checkpoint.pt").read_bytes() == b"garbage"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    r = run("fit", *SMALL, "--out", str(locked / "run"))
    assert r.exit_code == 1 and "cannot write" in r.output


def test_output_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = run("fit", *SMALL, "--out", str(f / "run"))
    assert r.exit_code != 0 and "cannot write" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("model", ["hvae", "lvae", "vae"])
def test_fit_other_models(tmp_path, model):
    r = run("fit", *SMALL, "--steps", "2", "--log-every", "1", "--model", model, "--out", str(tmp_path / model))
    assert r.exit_code == 0, r.output
    assert f"{model} on shapes" in r.output and "parameters" in r.output
    assert (tmp_path / model / "layers.png").exists()


def test_meanfield_refused_for_hvae(tmp_path):
    r = run("fit", *SMALL, "--model", "hvae", "--elbo", "meanfield", "--out", str(tmp_path / "h"))
    assert r.exit_code == 1 and "HVAE does not support the 'meanfield' ELBO" in r.output
    assert "use one of: trace" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("module", ["pyro_vlae", "pyro_vlae.cli"])
def test_python_dash_m_knows_every_command(module):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "Usage: pyro-vlae" in r.stdout
    for command in main.commands:
        assert f"  {command} " in r.stdout, command
    r = subprocess.run([sys.executable, "-m", module, "gibbs", "--help"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "Gibbs chain" in r.stdout, r.stderr


def test_a_small_beta_holds_from_the_start(tmp_path):
    r = run("fit", *SMALL, "--steps", "2", "--beta", "0.0001", "--out", str(tmp_path / "b"))
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["beta"] == config["beta_start"] == 0.0001
    r = run("fit", *SMALL, "--beta", "0", "--out", str(tmp_path / "zero"))
    assert r.exit_code == 1 and "--beta must be positive" in r.output and "beta_start" not in r.output


def test_messages_name_only_options_that_exist():
    import re

    from pyro_vlae import RunConfig
    from pyro_vlae.errors import ConfigError

    fit_options = {o for p in main.commands["fit"].params for o in p.opts}
    fields = set(RunConfig.hints())  # the flat options: config.json's keys
    for bad in [dict(beta=0.0), dict(beta_start=0.0), dict(num_particles=0), dict(steps=0), dict(lr=0.0)]:
        with pytest.raises(ConfigError) as err:
            RunConfig(**bad).validate()
        problem = err.value.problem
        options, config_fields = re.findall(r"--[a-z-]+", problem), re.findall(r"RunConfig\.(\w+)", problem)
        assert options or config_fields, problem
        assert set(options) <= fit_options and set(config_fields) <= fields, problem
