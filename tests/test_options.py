"""Options flow CLI -> config -> plugin -> model: recommended settings arrive, mistakes are named."""

import json

import pytest
import torch
from conftest import fit_args, run

from pyro_vlae import RunConfig
from pyro_vlae.errors import ConfigError
from pyro_vlae.plugins import dataset, likelihood
from pyro_vlae.run_folder import load_run
from tests.test_datasets import write_mnist

FAST = fit_args(2, batch_size=4, num_train=None)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize(
    "args, name, scale",
    [
        ([], "gaussian", 0.25),  # MNIST's recommended σ, not the Gaussian's default 0.1
        (["-L", "scale=0.5"], "gaussian", 0.5),  # given options replace the recommendation
        (["--likelihood", "laplace"], "laplace", 0.125),  # recommended options belong to the default likelihood
    ],
)
def test_recommended_likelihood_options_reach_the_model(tmp_path, args, name, scale):
    write_mnist(tmp_path / "mnist", n_train=8, n_test=4)
    out = tmp_path / "run"
    r = run("fit", "--plugin", "mnist", "--data-dir", str(tmp_path / "mnist"), "-P", "download=false", *FAST,
            *args, "--out", str(out))
    assert r.exit_code == 0, r.output
    model = load_run(out).model
    assert model.likelihood.name == name
    assert float(model.likelihood.scale) == pytest.approx(scale)
    assert json.loads((out / "config.json").read_text())["likelihood_options"] == (
        {"scale": scale} if name == "gaussian" else {}
    )


def test_resolve_fills_likelihood_options_from_the_recommendation():
    recommended = {"likelihood_options": {"scale": 2.0}}
    assert RunConfig().resolve(recommended, "laplace", 100).likelihood_options == {"scale": 2.0}
    assert RunConfig(likelihood="gaussian").resolve(recommended, "laplace", 100).likelihood_options == {}
    assert RunConfig(likelihood_options={}).resolve(recommended, "laplace", 100).likelihood_options == {}


@pytest.mark.parametrize(
    "args, message",
    [
        (["-P", "num_trian=5"], "unknown option 'num_trian' for the dataset plugin 'shapes' ('num_trian': did you "
                                "mean 'num_train'?)\n  fix: its options are: data_dir, download, num_train"),
        (["-L", "scal=0.1"], "unknown option 'scal' for the likelihood plugin 'gaussian'"),
        (["-L", "scal=0.1"], "its options are: scale, variance, value_range, min_scale; give them as -L KEY=VALUE"),
        (["-L", "a=1", "-L", "b=2"], "unknown options 'a', 'b' for the likelihood plugin 'gaussian'"),
        (["-P", "num_train=abc"], "option 'num_train' of the dataset plugin 'shapes' must be an integer, got 'abc'"),
        (["-L", "scale=abc"], "option 'scale' of the likelihood plugin 'gaussian' must be a number, got 'abc'"),
        (["-P", "download=1"], "must be true or false"),
        (["-P", "data_dir=/tmp"], "give the data folder with --data-dir"),
    ],
)
def test_misspelled_or_mistyped_plugin_options_list_the_valid_ones(tmp_path, args, message):
    small = [] if args[0] == "-P" else ["-P", "num_train=16", "-P", "num_test=8"]
    r = run("fit", *FAST, *small, *args, "--out", str(tmp_path / "x"))
    assert r.exit_code == 1 and message in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "x" / "checkpoint.pt").exists()


def test_option_checks_in_the_library():
    with pytest.raises(ConfigError, match="did you mean 'scale'"):
        likelihood("laplace", scal=1.0)
    with pytest.raises(ConfigError, match="its options are: data_dir, download, num_train, num_test, seed"):
        dataset("shapes", size=3)
    assert float(likelihood("laplace", scale=2).scale) == 2.0  # an integer is a number
    assert torch.is_tensor(dataset("shapes", num_train=8, num_test=4).load().x)


def test_help_is_not_cut_at_abbreviations_and_every_option_says_what_it_does():
    import click

    from pyro_vlae.cli import main

    r = run("--help")
    assert "(paper Prop. 1, Fig. 2)" in r.output and "(paper Fig. 5)" in r.output
    for name, command in main.commands.items():
        for option in command.params:
            if isinstance(option, click.Option):
                assert option.help, (name, option.opts)
    r = run("fit", "--help")
    assert "[default: the data set's, else 2000]" in r.output and "pyro-vlae plugins NAME" in r.output


def test_plugins_shows_a_data_sets_recommended_values():
    r = run("plugins", "mnist")
    assert r.exit_code == 0, r.output
    assert "z_dims = 2,2,2" in r.output and "default likelihood: gaussian" in r.output
    assert "download = true" in r.output
    r = run("plugins", "image-folder")
    assert "unreadable = \"skip\"" in r.output and "split_seed = 0" in r.output
    r = run("plugins", "nope")
    assert r.exit_code == 1 and "unknown plugin 'nope'" in r.output


def test_every_command_takes_the_same_devices_with_one_default(tmp_path, monkeypatch):
    from pyro_vlae.cli import main
    from pyro_vlae.devices import resolve_device

    defaults = {name: next(p.default for p in c.params if p.name == "device")
                for name, c in main.commands.items() if any(p.name == "device" for p in c.params)}
    assert set(defaults) >= {"fit", "evaluate", "encode", "explore", "sample", "traverse", "gibbs"}
    assert set(defaults.values()) == {"auto"}
    r = run("fit", "--device", "gpu", "--out", tmp_path / "s")
    assert r.exit_code == 2 and "cuda:N" in r.output
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="sees 2 CUDA device"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = run("fit", *fit_args(1), "--device", "cuda:1", "--out", tmp_path / "r")
    assert r.exit_code == 1 and "--device cuda:1 was requested but PyTorch sees no CUDA device" in r.output


def test_the_resolved_configuration_holds_the_value_range_once():
    given = {"value_range": [-1, 1], "scale": 0.5}
    c = RunConfig(likelihood_options=given).resolve({}, "gaussian", 100, (0.0, 1.0))
    assert c.value_range == (-1.0, 1.0) and c.likelihood_options == {"scale": 0.5}
    assert given == {"value_range": [-1, 1], "scale": 0.5}  # the caller's options are left alone
    assert RunConfig().resolve({}, "gaussian", 100, (0.0, 255.0)).value_range == (0.0, 255.0)


def test_a_failed_start_leaves_no_run_folder_behind(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy.io", None)  # scipy missing: import scipy.io fails
    r = run("fit", "--plugin", "svhn", "--data-dir", tmp_path / "svhn", "--out", tmp_path / "a")
    assert r.exit_code == 1 and 'pip install "pyro-vlae[svhn]"' in r.output
    r = run("fit", "--plugin", "mnist", "--data-dir", tmp_path / "none", "-P", "download=false",
            "--out", tmp_path / "b")
    assert r.exit_code == 1 and "train-images-idx3-ubyte" in r.output
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = run("fit", *fit_args(1), "--device", "cuda", "--out", tmp_path / "c")
    assert r.exit_code == 1 and "no CUDA device" in r.output
    assert not [p for p in tmp_path.iterdir() if p.name in ("a", "b", "c")]
    (tmp_path / "mine").mkdir()  # a folder the user made stays
    r = run("fit", *fit_args(1), "--device", "cuda", "--out", tmp_path / "mine")
    assert r.exit_code == 1 and (tmp_path / "mine").is_dir()
