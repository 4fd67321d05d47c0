"""RunConfig composed of one spec per owner: flat keys, defaults written once, resume rules."""

import dataclasses
import json

import pytest

from pyro_vlae.cli import main
from pyro_vlae.config import INVOCATION, OWNERS, RunConfig
from pyro_vlae.errors import ConfigError
from pyro_vlae.models import MODELS, model_options
from pyro_vlae.specs import MODEL_OPTIONS, ModelSpec


def test_every_flat_key_has_one_owner_and_reads_back_read_only():
    parts = {f.name for f in dataclasses.fields(RunConfig)}
    assert parts == {"data", "model_spec", "likelihood_spec", "training", "settings"}
    assert set(OWNERS.values()) == parts and not set(OWNERS) & parts
    config = RunConfig(z_dims=(2, 2), steps=5, tracker="tensorboard")
    assert (config.model_spec.z_dims, config.training.steps, config.settings.tracker) == ((2, 2), 5, "tensorboard")
    assert (config.z_dims, config.steps, config.tracker) == ((2, 2), 5, "tensorboard")
    with pytest.raises(AttributeError):
        config.steps = 6
    with pytest.raises(ConfigError, match="unknown configuration keys: stepz"):
        RunConfig(stepz=5)


def test_config_json_round_trips_and_an_older_one_loads_with_the_new_defaults():
    config = RunConfig(z_dims=(2, 2), kl_weights=(2.0, 1.0), steps=5, log_images_every=7, dist_timeout=30.0)
    resolved = config.resolve({}, "gaussian", 100, (0.0, 1.0))
    saved = json.loads(json.dumps(resolved.to_dict()))
    assert list(saved) == list(OWNERS)  # flat, one key per option
    assert RunConfig.from_dict(saved) == resolved
    older = {k: v for k, v in saved.items() if k not in INVOCATION}
    assert RunConfig.from_dict(older) == resolved.replace(**{k: RunConfig.default(k) for k in INVOCATION})


def test_the_command_line_shows_the_defaults_of_the_specs():
    shown = main.commands["fit"].make_context("fit", []).params  # every option left out
    for key in set(OWNERS) & set(shown) - {"plugin_options"}:  # no -P is no plugin option
        assert shown[key] == RunConfig.default(key), key  # None: the data set's, resolved later
    assert {f.name for f in dataclasses.fields(ModelSpec)} >= set(MODEL_OPTIONS)
    assert MODEL_OPTIONS == {k: v for cls in MODELS.values() for k, v in model_options(cls).items()}


def test_resume_applies_resumable_options_refuses_others_and_keeps_this_invocations_tracker():
    saved = RunConfig(steps=10, seed=3, tracker="mlflow", log_images_every=4).resolve({}, "gaussian", 100)
    resumed = RunConfig().resume(saved, {"steps": 20, "seed": 3})
    assert (resumed.steps, resumed.seed, resumed.tracker, resumed.log_images_every) == (20, 3, None, 500)
    with pytest.raises(ConfigError, match="seed was given as 4"):
        RunConfig().resume(saved, {"seed": 4})
