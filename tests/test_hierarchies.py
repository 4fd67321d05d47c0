import math
import warnings

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from pyro_vlae import KLWarmup, Trainer
from pyro_vlae.errors import ConfigError
from pyro_vlae.models import HVAE, LVAE, MODELS, VAE, build_model
from pyro_vlae.models.lvae import precision_weighted

SHAPES = [(3, 32, 32), (1, 28, 28), (12,)]


def sample_sites(trace):
    return [n for n, s in trace.nodes.items() if s["type"] == "sample" and n != "data"]


@pytest.mark.parametrize("x_shape", SHAPES)
@pytest.mark.parametrize("name", ["hvae", "lvae"])
def test_hierarchy_sites_and_shapes(name, x_shape):
    model = build_model(name, x_shape, (2, 3, 4), width=0.125)
    x = torch.rand(4, *x_shape)
    guide_trace, model_trace = model.traces(x)
    for site, d in zip(("z1", "z2", "z3"), (2, 3, 4)):
        assert guide_trace.nodes[site]["value"].shape == (4, d)
        assert model_trace.nodes[site]["fn"].event_shape == (d,)
    assert sample_sites(model_trace) == ["z3", "z2", "z1", "x"]  # ancestral order, top first
    assert sample_sites(guide_trace) == (["z1", "z2", "z3"] if name == "hvae" else ["z3", "z2", "z1"])
    assert model_trace.nodes["x"]["fn"].event_shape == x_shape
    assert model.gibbs_sites == ("z1",)


def test_vae_is_one_layer_of_the_summed_width():
    model = VAE((3, 32, 32), (2, 3, 4), width=0.125)
    assert model.latent_sites == ("z1",) and model.z_dims == (9,)
    guide_trace, model_trace = model.traces(torch.rand(4, 3, 32, 32))
    assert guide_trace.nodes["z1"]["value"].shape == (4, 9)
    assert sample_sites(model_trace) == ["z1", "x"]
    with pytest.raises(ConfigError, match="z_dims"):
        VAE((12,), ())


def test_markov_prior_is_conditional():
    """p(z1 | z2) depends on z2; the VLAE-style N(0, I) would not."""
    model = HVAE((12,), (2, 2)).eval()
    z2 = torch.tensor([[0.0, 0.0], [3.0, -3.0]])
    loc, scale = model.conditional(1, z2)
    assert not torch.allclose(loc[0], loc[1])
    assert (scale > 0).all() and (scale <= 1.001 + 1e-6).all()


def test_precision_weighted_merge_is_the_normalised_product():
    torch.manual_seed(0)
    loc_hat, loc_p = torch.randn(5, 3), torch.randn(5, 3)
    scale_hat, scale_p = torch.rand(5, 3) + 0.1, torch.rand(5, 3) + 0.1
    loc, scale = precision_weighted(loc_hat, scale_hat, loc_p, scale_p)
    # closed form (Sønderby et al. 2016): σ_q² = 1/(σ̂⁻² + σp⁻²), μ_q = (μ̂σ̂⁻² + μpσp⁻²) σ_q²
    var = 1 / (scale_hat**-2 + scale_p**-2)
    assert torch.allclose(scale**2, var)
    assert torch.allclose(loc, (loc_hat / scale_hat**2 + loc_p / scale_p**2) * var)
    # N(z; μ̂, σ̂) N(z; μp, σp) = N(μ̂; μp, sqrt(σ̂² + σp²)) N(z; μq, σq) for every z
    normal = torch.distributions.Normal
    z = torch.randn(5, 3)
    lhs = normal(loc_hat, scale_hat).log_prob(z) + normal(loc_p, scale_p).log_prob(z)
    rhs = normal(loc_p, (scale_hat**2 + scale_p**2).sqrt()).log_prob(loc_hat) + normal(loc, scale).log_prob(z)
    assert torch.allclose(lhs, rhs, atol=1e-5)


def test_lvae_guide_merges_with_the_generative_top_down_path():
    model = LVAE((12,), (2, 2)).eval()
    x = torch.rand(3, 12)
    guide_trace = poutine.trace(model.guide).get_trace(x)
    z2 = guide_trace.nodes["z2"]["value"]
    (loc_hat1, scale_hat1), (loc_hat2, scale_hat2) = model.bottom_up(x)
    q2 = guide_trace.nodes["z2"]["fn"].base_dist
    assert torch.allclose(q2.loc, loc_hat2) and torch.allclose(q2.scale, scale_hat2)
    loc, scale = precision_weighted(loc_hat1, scale_hat1, *model.conditional(1, z2))
    q1 = guide_trace.nodes["z1"]["fn"].base_dist
    assert torch.allclose(q1.loc, loc) and torch.allclose(q1.scale, scale)


@pytest.mark.parametrize("name", ["hvae", "lvae"])
def test_elbo_improves_on_tiny_data(name, tiny_shapes):
    model = build_model(name, (3, 32, 32), (2, 2), width=0.125)
    trainer = Trainer(model, tiny_shapes.x, batch_size=32, lr=2e-3, warmup=KLWarmup(20))
    losses = [trainer.step() for _ in range(60)]
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10


def test_meanfield_elbo_refused_where_the_guide_breaks_its_condition(tiny_shapes):
    assert HVAE.supported_elbos == ("trace",)
    with pytest.raises(ConfigError, match="HVAE does not support the 'meanfield' ELBO"):
        Trainer(HVAE((3, 32, 32), (2, 2), width=0.125), tiny_shapes.x, batch_size=32, elbo="meanfield")
    for name in ("vlae", "lvae", "vae"):
        assert "meanfield" in MODELS[name].supported_elbos


def test_lvae_meanfield_and_trace_elbo_agree_in_expectation():
    """Evidence that TraceMeanField_ELBO is valid for the LVAE: replacing log q − log p by
    the analytic KL given the sampled parent leaves the expected loss unchanged."""
    model = LVAE((12,), (2, 2)).eval()
    x = torch.rand(1, 12).expand(4000, 12)
    pyro.set_rng_seed(0)
    trace = Trace_ELBO().loss(model.model, model.guide, x) / 4000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pyro's own mean-field check (site order) passes
        meanfield = TraceMeanField_ELBO().loss(model.model, model.guide, x) / 4000
    assert meanfield == pytest.approx(trace, rel=0.02)


@pytest.mark.parametrize("name", ["vlae", "hvae", "lvae", "vae"])
def test_noise_fixes_the_reparameterised_epsilon(name):
    model = build_model(name, (12,), (2, 3)).eval()
    eps = {site: torch.randn(4, d) for site, d in zip(model.latent_sites, model.z_dims)}
    a = model.generate(4, noise=eps)
    b = model.generate(4, noise=eps)
    assert torch.allclose(a, b)
    if name == "hvae":  # z2 = ε2 (N(0, I) prior), z1 = μ(z2) + σ(z2) ε1
        loc, scale = model.conditional(1, eps["z2"])
        expected = model.generate(4, fixed={"z2": eps["z2"], "z1": loc + scale * eps["z1"]})
        assert torch.allclose(a, expected, atol=1e-6)


@pytest.mark.parametrize(
    "x_shape, z_dims, width",
    [
        ((3, 32, 32), (3, 3, 3), 0.5),
        ((1, 28, 28), (2, 2, 2), 1.0),
        ((784,), (2, 2, 2), 1.0),
        ((3, 64, 64), (2, 2), 0.25),
    ],
)
def test_parameter_counts_within_15_percent(x_shape, z_dims, width):
    counts = [
        sum(p.numel() for p in build_model(name, x_shape, z_dims, width=width).parameters())
        for name in ("vlae", "hvae", "lvae", "vae")
    ]
    assert max(counts) / min(counts) < 1.15, counts
    assert not math.isclose(counts[0], counts[1])  # really different networks
