import pyro
import pytest
import torch
from pyro import poutine

from pyro_vlae import VLAE, Bernoulli, Gaussian
from pyro_vlae.errors import ConfigError, DataError

SHAPES = [(3, 32, 32), (1, 28, 28), (3, 64, 64), (12,)]


@pytest.mark.parametrize("x_shape", SHAPES)
@pytest.mark.parametrize("z_dims", [(2,), (2, 3, 4)])
def test_sites_and_shapes(x_shape, z_dims):
    model = VLAE(x_shape, z_dims, width=0.125)
    x = torch.rand(4, *x_shape)
    guide_trace = poutine.trace(model.guide).get_trace(x)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(x)
    names = [f"z{i + 1}" for i in range(len(z_dims))]
    for name, d in zip(names, z_dims):
        assert guide_trace.nodes[name]["value"].shape == (4, d)
        assert model_trace.nodes[name]["fn"].event_shape == (d,)
        assert "data" in [f.name for f in model_trace.nodes[name]["cond_indep_stack"]]
    assert model_trace.nodes["x"]["is_observed"]
    assert model_trace.nodes["x"]["fn"].event_shape == x_shape
    assert [n for n, s in model_trace.nodes.items() if s["type"] == "sample" and n != "data"] == [*names, "x"]


def test_model_without_data_generates():
    model = VLAE((3, 32, 32), (2, 2), width=0.125).eval()
    x = model.model(batch_size=5).mean
    assert x.shape == (5, 3, 32, 32)
    mean = model.generate(6)
    assert mean.shape == (6, 3, 32, 32) and 0 <= mean.min() and mean.max() <= 1
    assert model.model().mean.shape == (1, 3, 32, 32)
    with pytest.raises(ConfigError, match="batch size"):
        model.model(batch_size=0)


def test_subsample_scaling_reaches_every_site():
    model = VLAE((12,), (2, 2))
    x = torch.rand(8, 12)
    tr = poutine.trace(model.model).get_trace(x, num_data=80, beta=0.25)
    assert tr.nodes["x"]["scale"] == pytest.approx(10.0)
    for name in ("z1", "z2"):
        assert tr.nodes[name]["scale"] == pytest.approx(2.5)  # num_data / B × β
    gtr = poutine.trace(model.guide).get_trace(x, num_data=80, beta=0.25)
    assert gtr.nodes["z1"]["scale"] == pytest.approx(2.5)


def test_conditioning_a_layer_fixes_it():
    model = VLAE((12,), (2, 2)).eval()
    code = torch.zeros(5, 2)
    tr = poutine.trace(poutine.condition(model.model, data={"z2": code})).get_trace(batch_size=5)
    assert torch.equal(tr.nodes["z2"]["value"], code)


def test_bad_shapes_and_values():
    model = VLAE((3, 32, 32), (2, 2), width=0.125)
    with pytest.raises(DataError, match=r"expected a batch of shape \(B, 3, 32, 32\)"):
        model.guide(torch.rand(4, 1, 28, 28))
    bad = torch.rand(4, 3, 32, 32)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        model.check_data(bad)
    with pytest.raises(DataError, match="range"):
        model.check_data(torch.rand(4, 3, 32, 32) * 3)
    binary = VLAE((12,), (2,), likelihood=Bernoulli())
    with pytest.raises(DataError, match="continuous"):
        binary.check_data(torch.rand(4, 12))
    binary.check_data(torch.randint(0, 2, (4, 12)).float())
    with pytest.raises(ConfigError, match="z_dims"):
        VLAE((12,), ())


def test_likelihood_log_probs_match_torch():
    params = torch.randn(3, 2, 4, 4)
    x = torch.rand(3, 2, 4, 4)
    g = Gaussian(scale=0.2)
    expected = torch.distributions.Normal(torch.sigmoid(params), 0.2).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(g(params).log_prob(x), expected)
    b = Bernoulli()
    xb = (x > 0.5).float()
    expected = torch.distributions.Bernoulli(logits=params).log_prob(xb).sum((1, 2, 3))
    assert torch.allclose(b(params).log_prob(xb), expected)


def test_learned_gaussian_variance_is_a_parameter():
    model = VLAE((12,), (2,), likelihood=Gaussian(variance="pixel"))
    assert model.likelihood.log_scale.shape == (12,)
    names = [n for n, _ in model.named_parameters()]
    assert "likelihood.log_scale" in names


def test_elbo_terms_and_meanfield_agree_with_trace():
    model = VLAE((12,), (2, 3)).eval()
    x = torch.rand(16, 12)
    terms = model.elbo_terms(x)
    assert terms["kl"].shape == (16, 2) and (terms["kl"] >= 0).all()
    pyro.set_rng_seed(1)
    loss = pyro.infer.TraceMeanField_ELBO().loss(model.model, model.guide, x)
    pyro.set_rng_seed(1)
    assert loss == pytest.approx(-float((terms["recon"] - terms["kl"].sum(-1)).sum()), rel=0.05)
