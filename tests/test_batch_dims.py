"""Networks and likelihoods accept extra leading batch dimensions: vectorised particles,
parallel Predictive and every ELBO Pyro users reach for, for every model."""

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Predictive, RenyiELBO, Trace_ELBO, TraceGraph_ELBO, TraceMeanField_ELBO
from pyro.optim import Adam

from pyro_vlae.models import build_model
from pyro_vlae.plugins import likelihood

MODELS = ["vlae", "vlae-gated-mlp", "hvae", "lvae", "vae"]
X_SHAPE = (1, 8, 8)


def make(name, x_shape=X_SHAPE, z_dims=(2, 3), lik=None):
    pyro.set_rng_seed(0)
    options = {"combine": "gated", "heads": "mlp"} if name == "vlae-gated-mlp" else {}
    return build_model(name.split("-")[0], x_shape, z_dims, lik, "auto", 0.125, **options)


ELBOS = {
    "trace": lambda: Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1),
    "renyi": lambda: RenyiELBO(alpha=0.5, num_particles=3, vectorize_particles=True, max_plate_nesting=1),
    "tracegraph": lambda: TraceGraph_ELBO(num_particles=2, vectorize_particles=True, max_plate_nesting=1),
    "meanfield": lambda: TraceMeanField_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1),
}


@pytest.mark.parametrize("elbo", list(ELBOS))
@pytest.mark.parametrize("name", MODELS)
def test_svi_with_vectorised_particles(name, elbo):
    model = make(name)
    if elbo == "meanfield" and "meanfield" not in model.supported_elbos:
        pytest.skip(f"{name} supports only {model.supported_elbos}")
    x = torch.rand(6, *X_SHAPE)
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-3}), ELBOS[elbo]())
    losses = [svi.step(x, num_data=60) for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize("name", MODELS)
def test_parallel_predictive_of_model_and_guide(name):
    model = make(name).eval()
    x = torch.rand(5, *X_SHAPE)
    posterior = Predictive(model.model, guide=model.guide, num_samples=7, parallel=True)(x)
    for site, d in zip(model.latent_sites, model.z_dims):
        assert posterior[site].shape == (7, 5, d)
    assert posterior["x"].shape == (7, 5, *X_SHAPE)
    prior = Predictive(model.model, num_samples=7, parallel=True)(batch_size=5)
    assert prior["x"].shape == (7, 5, *X_SHAPE)


@pytest.mark.parametrize("name", MODELS)
def test_particles_are_scored_as_separately(name):
    """Flattening and restoring keeps every particle's own data: scores equal one particle at a time."""
    model = make(name).eval()
    x = torch.rand(5, *X_SHAPE)
    with pyro.plate("particles", 3, dim=-2):
        guide = poutine.trace(model.guide).get_trace(x)
    together = poutine.trace(poutine.replay(model.model, trace=guide)).get_trace(x)
    joint = together.nodes["x"]["fn"].log_prob(x)
    assert joint.shape == (3, 5)
    for p in range(3):
        fixed = {s: guide.nodes[s]["value"][p] for s in model.latent_sites}
        alone = poutine.trace(poutine.condition(model.model, data=fixed)).get_trace(x)
        assert torch.allclose(alone.nodes["x"]["fn"].log_prob(x), joint[p], rtol=1e-5, atol=1e-4)
        for s in model.latent_sites:
            assert torch.allclose(alone.nodes[s]["fn"].log_prob(fixed[s]), together.nodes[s]["fn"].log_prob(
                guide.nodes[s]["value"])[p], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "name, options, x_shape",
    [
        ("gaussian", {"variance": "pixel"}, (3, 4, 4)),
        ("laplace", {}, (3, 4, 4)),
        ("bernoulli", {}, (5,)),
        ("discretized-logistic", {}, (3, 4, 4)),
        ("discretized-logistic-mixture", {"components": 2}, (3, 4, 4)),
    ],
)
def test_every_likelihood_takes_leading_batch_dimensions(name, options, x_shape):
    lik = likelihood(name, **options)
    lik.bind(x_shape)
    params = torch.randn(4, 2, lik.num_params(x_shape[0]), *x_shape[1:])
    x = torch.randint(0, 256, (2, *x_shape)).float() / 255
    if name == "bernoulli":
        x = x.round()
    d = lik(params)
    assert d.batch_shape == (4, 2) and d.event_shape == x_shape
    lp = d.log_prob(x)
    for p in range(4):
        assert torch.allclose(lik(params[p]).log_prob(x), lp[p])
    assert d.mean.shape == (4, 2, *x_shape) and d.sample().shape == (4, 2, *x_shape)


def test_the_likelihood_written_in_the_docs_works_with_the_library():
    """docs/plugins.md's example: built as the library builds it (with value_range), vectorised."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    section = text[text.index("### Writing a likelihood"):]
    assert "receives `value_range`" in section
    namespace = {}
    exec(re.search(r"```python\n(.*?)```", section, re.S).group(1), namespace)
    lik = namespace["Beta"](concentration=5.0, value_range=(0.0, 1.0))
    model = make("vlae", lik=lik)
    x = torch.rand(4, *X_SHAPE).clamp(0.05, 0.95)
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-3}), ELBOS["trace"]())
    assert torch.isfinite(torch.tensor(svi.step(x)))
