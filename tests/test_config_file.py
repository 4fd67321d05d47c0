"""`pyro-vlae fit --config FILE`: a run's config.json, TOML or YAML; the command line overrides."""

import json
import sys

import pytest
from conftest import fit_args, run

from pyro_vlae.config import RunConfig
from pyro_vlae.config_file import check_config, read_config
from pyro_vlae.errors import ConfigError

SMALL = fit_args()


def test_a_run_repeats_from_its_config_with_another_seed(tmp_path):
    first = tmp_path / "x"
    r = run("fit", *SMALL, "--lr", "0.003", "--out", first)
    assert r.exit_code == 0, r.output
    r = run("fit", "--config", first / "config.json", "--seed", "1", "--out", tmp_path / "x-seed1", "--no-progress")
    assert r.exit_code == 0, r.output
    a = json.loads((first / "config.json").read_text())
    b = json.loads((tmp_path / "x-seed1" / "config.json").read_text())
    assert b.pop("seed") == 1 and a.pop("seed") == 0
    assert a == b  # everything else, including -P options and the learning rate, came from the file
    r = run("fit", "--config", first, "--steps", "2", "--out", tmp_path / "short", "--no-progress")  # a run folder
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "short" / "config.json").read_text())["steps"] == 2


def test_toml_and_yaml_hold_the_same_keys(tmp_path):
    (tmp_path / "c.toml").write_text(
        'model = "hvae"\nz_dims = [2, 3]\nlr = 0.01\nsteps = 7\n[plugin_options]\nnum_train = 50\n'
    )
    (tmp_path / "c.json").write_text(
        json.dumps({"model": "hvae", "z_dims": [2, 3], "lr": 0.01, "steps": 7, "plugin_options": {"num_train": 50}})
    )
    toml = read_config(tmp_path / "c.toml")
    assert toml == read_config(tmp_path / "c.json")
    assert toml["z_dims"] == (2, 3)
    assert RunConfig(**toml).model == "hvae"


def test_yaml_holds_the_same_keys(tmp_path):
    pytest.importorskip("yaml", reason="YAML is read with PyYAML (pip install pyyaml)")
    (tmp_path / "c.yaml").write_text("model: hvae\nz_dims: [2, 3]\nsteps: 7\nplugin_options:\n  num_train: 50\n")
    (tmp_path / "c.toml").write_text('model = "hvae"\nz_dims = [2, 3]\nsteps = 7\nplugin_options = {num_train = 50}\n')
    assert read_config(tmp_path / "c.yaml") == read_config(tmp_path / "c.toml")


def test_command_line_overrides_the_file_and_steps_replace_epochs(tmp_path):
    (tmp_path / "c.toml").write_text('epochs = 2.0\nlr = 0.5\nz_dims = [2, 2]\nwidth = 0.125\n'
                                     '[plugin_options]\nnum_train = 32\nnum_test = 16\n')
    r = run("fit", "--config", tmp_path / "c.toml", "--lr", "0.002", "--steps", "3", "--batch-size", "16",
            "--out", tmp_path / "o", "--no-progress")
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "o" / "config.json").read_text())
    assert saved["lr"] == 0.002 and saved["steps"] == 3 and saved["z_dims"] == [2, 2]


@pytest.mark.parametrize(
    "name, text, messages",
    [
        ("a.toml", 'stpes = 3\nlr = "fast"\n', ["2 problems", "unknown key 'stpes' (did you mean 'steps'?)",
                                                 "lr must be a number (or left out), got 'fast'"]),
        ("a.json", '{"z_dims": [2, "x"], "jit": 1}',
         ["z_dims must be a list of integers", "jit must be true or false"]),
        ("a.json", '{"steps": 3,', ["is not valid JSON", "line 1"]),
        ("a.toml", "steps = = 3", ["is not valid TOML"]),
        ("a.json", "[1, 2]", ["holds list, not a table of options"]),
        ("a.ini", "steps=3", ["not a configuration file"]),
        ("missing.json", None, ["no configuration file at"]),
    ],
)
def test_bad_config_file_is_one_clear_message_and_nothing_is_written(tmp_path, name, text, messages):
    if text is not None:
        (tmp_path / name).write_text(text)
    out = tmp_path / "never"
    r = run("fit", "--config", tmp_path / name, "--out", out)
    assert r.exit_code == 1 and "Traceback" not in r.output
    for message in messages:
        assert message in r.output
    assert not out.exists()


@pytest.mark.parametrize(
    "name, content, messages",
    [
        ("a.json", b"\xff\xfe\x00garbage", ["cannot read", "a.json", "readable text file"]),
        ("a.yaml", b"model: [vlae\nsteps: 5\n", ["is not valid YAML", "line 1"]),
        ("folder", None, ["no configuration file at", "config.json"]),
    ],
)
def test_corrupt_config_file_or_folder_without_one(tmp_path, name, content, messages):
    if name.endswith(".yaml"):
        pytest.importorskip("yaml", reason='YAML configurations need PyYAML: pip install "pyro-vlae[yaml]"')
    if content is None:
        (tmp_path / name).mkdir()  # a folder that is not a run: no config.json
    else:
        (tmp_path / name).write_bytes(content)
    out = tmp_path / "never"
    r = run("fit", "--config", tmp_path / name, "--out", out)
    assert r.exit_code == 1 and "Traceback" not in r.output
    for message in messages:
        assert message in r.output, r.output
    assert not out.exists()


def test_yaml_without_pyyaml_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)
    (tmp_path / "c.yaml").write_text("steps: 3\n")
    with pytest.raises(ConfigError, match="needs PyYAML.*\n.*pip install pyyaml"):
        read_config(tmp_path / "c.yaml")


def test_every_saved_field_passes_its_own_check():
    config = RunConfig(z_dims=(2, 2), steps=5, lr=0.1, clip_norm=3, plugin_options={"num_train": 4})
    assert check_config(json.loads(json.dumps(config.to_dict())))["z_dims"] == (2, 2)
