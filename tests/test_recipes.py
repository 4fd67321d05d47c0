"""Each model's own recipe (per-model recommended settings) and the Ladder VAE paper's MLP stem."""

import json

import pytest
import torch
from conftest import run
from test_datasets import write_mnist
from torch import nn

from pyro_vlae.config import RunConfig
from pyro_vlae.data.mnist import LVAE_PAPER, BinarizedMNIST
from pyro_vlae.likelihoods import Bernoulli
from pyro_vlae.models import build_model
from pyro_vlae.nets.ladder import architecture, encoder_stage
from pyro_vlae.run_folder import CONFIG

N_TRAIN = 60000


def resolved(model: str, **options) -> RunConfig:
    plugin = BinarizedMNIST(download=False)
    config = RunConfig(plugin=plugin.name, model=model, **options)
    return config.resolve(plugin.recommended_for(model), plugin.default_likelihood, N_TRAIN, plugin.value_range)


@pytest.mark.parametrize("model", ["lvae", "hvae"])
def test_the_markov_hierarchies_get_the_lvae_papers_setting(model):
    c = resolved(model)
    assert c.z_dims == (64, 32, 16, 8, 4) and c.stem == "lvae-mlp"
    assert (c.batch_size, c.lr, c.likelihood) == (256, 2e-4, "bernoulli")
    assert c.steps == 468750  # 2000 epochs of 60,000 / 256 batches
    assert c.warmup_steps == 46875  # the first 200 epochs
    assert c.fade_in == 0  # the VLAE's fade-in is not theirs


def test_the_vae_is_the_one_layer_model_and_the_vlae_keeps_its_authors_setting():
    vae = resolved("vae")
    assert vae.z_dims == (64,) and vae.stem == "lvae-mlp" and vae.steps == 468750
    vlae = resolved("vlae")
    assert vlae.z_dims == (2, 2, 2) and vlae.stem == "auto" and vlae.batch_size == 100
    assert (vlae.steps, vlae.warmup_steps, vlae.fade_in) == (20000, 2000, 3000)


def test_a_smaller_budget_keeps_the_warmups_share():
    c = resolved("lvae", epochs=20)
    assert c.steps == 4688 and c.warmup_steps == round(0.1 * 4688)
    assert resolved("lvae", steps=1000).warmup_steps == 100
    explicit = resolved("lvae", epochs=20, warmup_steps=7)
    assert explicit.warmup_steps == 7  # the user's warm-up wins


def test_options_given_override_the_recipe():
    c = resolved("lvae", z_dims=(8, 4), stem="mlp", batch_size=32)
    assert (c.z_dims, c.stem, c.batch_size) == ((8, 4), "mlp", 32)


def test_plugins_without_recipes_recommend_the_same_for_every_model():
    plugin = BinarizedMNIST(download=False)
    assert set(plugin.recipes) == {"lvae", "hvae", "vae"}
    assert plugin.recommended_for("vlae") == plugin.recommended
    assert plugin.recommended_for("lvae")["z_dims"] == LVAE_PAPER["z_dims"]


def test_fit_runs_the_lvae_recipe_and_prints_its_budget(tmp_path):
    write_mnist(tmp_path / "mnist", n_train=32, n_test=8)
    out = tmp_path / "run"
    r = run(
        "fit", "--plugin", "binarized-mnist", "--data-dir", str(tmp_path / "mnist"), "-P", "download=false",
        "--model", "lvae", "--epochs", "1", "--batch-size", "8", "--no-progress", "--out", str(out),
    )
    assert r.exit_code == 0, r.output
    config = json.loads((out / CONFIG).read_text())
    assert config["z_dims"] == [64, 32, 16, 8, 4] and config["stem"] == "lvae-mlp"
    assert config["steps"] == 4 and config["warmup_steps"] == 0  # a tenth of 4 steps, rounded
    assert "steps 0→4 (1 epochs of batches of 8, KL warm-up over 0 steps)" in r.output


# ---------------------------------------------------------------------------- the stem
def dense_widths(arch) -> list[list[int]]:
    return [[s[1] for s in level] for level in arch.levels]


def test_the_lvae_stem_narrows_from_level_to_level():
    arch = architecture((1, 28, 28), 5, "lvae-mlp")
    assert dense_widths(arch) == [[512, 512], [256, 256], [128, 128], [64, 64], [32, 32]]
    assert arch.shapes == ((1, 28, 28), (512,), (256,), (128,), (64,), (32,))
    deeper = architecture((784,), 7, "lvae-mlp", width=0.5)
    assert dense_widths(deeper)[-3:] == [[16, 16], [16, 16], [16, 16]]  # the last width repeats
    assert dense_widths(deeper)[0] == [256, 256]


def test_the_lvae_stems_stages_flatten_images_and_keep_leading_batch_dims():
    arch = architecture((1, 28, 28), 2, "lvae-mlp")
    g1 = encoder_stage(arch.levels[0], arch.shapes[0])
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g1.modules()) == 2
    x = torch.rand(3, 5, 1, 28, 28)
    assert g1(x).shape == (3, 5, 512)
    g1.eval()
    assert torch.allclose(g1(x)[1, 2], g1(x[1, 2:3])[0], atol=1e-5)


@pytest.mark.parametrize("name", ["lvae", "hvae", "vae"])
def test_models_on_the_lvae_stem_score_and_generate_images(name):
    z_dims = (8, 4, 2) if name != "vae" else (8,)
    model = build_model(name, (1, 28, 28), z_dims, Bernoulli(), stem="lvae-mlp", width=0.125)
    x = torch.bernoulli(torch.rand(4, 1, 28, 28))
    terms = model.elbo_terms(x)
    assert terms["recon"].shape == (4,) and terms["kl"].shape == (4, model.num_layers)
    assert torch.isfinite(terms["recon"]).all() and torch.isfinite(terms["kl"]).all()
    assert model.generate(3).shape == (3, 1, 28, 28)
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
