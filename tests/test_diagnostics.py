import pytest
import torch
from conftest import fit_args, run
from PIL import Image

from pyro_vlae.diagnostics import gibbs_chain, traversal
from pyro_vlae.errors import ConfigError
from pyro_vlae.models import build_model
from pyro_vlae.plotting import save_gibbs, save_samples, save_traversals

TINY = fit_args(2, z_dims="2,1", log_every=1)


@pytest.mark.parametrize("name", ["vlae", "hvae", "lvae", "vae"])
def test_gibbs_chain_keeps_shape_and_range(name, tiny_shapes):
    model = build_model(name, (3, 32, 32), (2, 2), width=0.125)
    x = tiny_shapes.x[:5]
    chain = gibbs_chain(model, x, steps=3)
    assert chain.shape == (3, 5, 3, 32, 32)
    assert chain.min() >= 0 and chain.max() <= 1 and torch.isfinite(chain).all()
    with pytest.raises(ConfigError, match="at least one step"):
        gibbs_chain(model, x, steps=0)


def test_gibbs_chain_uses_only_the_bottom_layer_of_a_hierarchy():
    """Prop. 1: the chain's next state depends on z1 alone; changing the guide's z2 (by
    conditioning it) leaves the chain's means unchanged."""
    model = build_model("hvae", (12,), (2, 2)).eval()
    x = torch.rand(4, 12)
    torch.manual_seed(0)
    a = gibbs_chain(model, x, steps=1, use_mean=True)
    torch.manual_seed(0)
    from pyro import poutine

    model.guide = poutine.condition(model.guide, data={"z2": torch.full((4, 2), 5.0)})
    b = gibbs_chain(model, x, steps=1, use_mean=True)
    assert torch.allclose(a, b)


def test_traversal_grid_and_bad_dims():
    model = build_model("vlae", (12,), (2, 1)).eval()
    images = traversal(model, 1, steps=5)
    assert images.shape == (25, 12)
    assert traversal(model, 2, steps=4).shape == (16, 12)  # a 1-D layer: every row traverses it
    with pytest.raises(ConfigError, match="cannot traverse dimensions"):
        traversal(model, 2, dims=(0, 1))
    with pytest.raises(ConfigError, match="layer 3 does not exist"):
        traversal(model, 3)


@pytest.mark.parametrize("name", ["vlae", "hvae", "lvae"])
def test_each_diagnostic_writes_its_png(name, tmp_path, tiny_shapes):
    model = build_model(name, (3, 32, 32), (2, 2), width=0.125).eval()
    paths = save_samples(model, tmp_path, rows=2, cols=3)
    paths += save_traversals(model, tmp_path, steps=3)
    paths.append(save_gibbs(model, tmp_path / "gibbs.png", tiny_shapes.x, chains=2, steps=3, snapshots=3))
    names = sorted(p.name for p in paths)
    assert names == sorted(["samples.png", "layer1.png", "layer2.png", "layers.png",
                            "traverse-z1.png", "traverse-z2.png", "traverse.png", "gibbs.png"])
    for p in paths:
        assert Image.open(p).size[0] > 0
    # Gibbs picture: two grids of 3 columns of 32-pixel images side by side, each under its title strip
    width, height = Image.open(tmp_path / "gibbs.png").size
    assert width > 2 * 3 * 32 and height == 2 * 33 + 1 + 14


def test_cli_diagnostics_on_a_finished_run(tmp_path):
    out = tmp_path / "run"
    r = run("fit", *TINY, "--model", "hvae", "--out", str(out))
    assert r.exit_code == 0, r.output
    r = run("sample", str(out), "--rows", "2", "--cols", "2")
    assert r.exit_code == 0, r.output
    assert (out / "layers.png").exists() and str(out / "samples.png") in r.output
    r = run("traverse", str(out), "--layer", "1", "--steps", "3", "--dims", "2,1")
    assert r.exit_code == 0, r.output
    assert (out / "traverse-z1.png").exists() and not (out / "traverse-z2.png").exists()
    r = run("gibbs", str(out), "--steps", "2", "--chains", "2", "--start", "noise")
    assert r.exit_code == 0, r.output
    assert (out / "gibbs.png").exists() and "gibbs.png" in r.output
    r = run("traverse", str(out), "--layer", "2", "--dims", "1,2")
    assert r.exit_code == 1 and "cannot traverse dimensions [0, 1] of z2" in r.output
    r = run("sample", str(tmp_path / "missing"))
    assert r.exit_code == 1 and "no checkpoint" in r.output and "Traceback" not in r.output


