import pyro
import pytest
import torch
from pyro.infer import Predictive

from pyro_vlae import VLAE, Trainer
from pyro_vlae.errors import DataError
from pyro_vlae.likelihoods import (
    Bernoulli,
    DiscretizedLogistic,
    DiscretizedLogisticMixture,
    Gaussian,
    Laplace,
)
from pyro_vlae.plugins import likelihood

LEVELS = torch.arange(256.0) / 255


def all_levels(channels: int) -> torch.Tensor:
    """(256, C, 1, 1): every 8-bit value of one pixel, the same in every channel."""
    return LEVELS.view(256, 1, 1, 1).expand(256, channels, 1, 1)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_discretized_logistic_sums_to_one_over_256_levels(value_range):
    lik = DiscretizedLogistic(value_range=value_range)
    low, high = value_range
    x = low + (high - low) * LEVELS.view(256, 1)
    for loc, log_scale in [(-0.5, -3.0), (0.0, -7.0), (0.3, -1.0), (0.49, -5.0), (0.8, 2.0)]:
        params = torch.tensor([[loc, log_scale]]).expand(256, 2)
        total = lik(params).log_prob(x).logsumexp(0)
        assert total.exp().item() == pytest.approx(1.0, abs=1e-5)


def test_discretized_logistic_mixture_sums_to_one_over_every_pixel_value():
    torch.manual_seed(0)
    lik = DiscretizedLogisticMixture(components=3)
    lik.bind((1, 1, 1))
    params = torch.randn(1, lik.num_params(1), 1, 1).expand(256, -1, 1, 1)
    assert lik(params).log_prob(all_levels(1)).logsumexp(0).exp().item() == pytest.approx(1.0, abs=1e-5)
    # two channels, the second's mean shifted by the first: sum over all 256² values of one pixel
    lik2 = DiscretizedLogisticMixture(components=2)
    lik2.bind((2, 1, 1))
    params = torch.randn(1, lik2.num_params(2), 1, 1)
    params[:, -2:] = 2.0  # strong coupling between the channels
    a, b = (t.flatten() for t in torch.meshgrid(LEVELS, LEVELS, indexing="ij"))
    lp = lik2(params).log_prob(torch.stack([a, b], 1).view(-1, 2, 1, 1))
    assert lp.logsumexp(0).exp().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("make", [lambda: DiscretizedLogistic(), lambda: DiscretizedLogisticMixture(components=2)])
def test_discretized_gradients_are_finite_at_0_and_255(make):
    lik = make()
    lik.bind((3, 2, 2))
    x = torch.zeros(4, 3, 2, 2)
    x[1] = 1.0
    x[2, :, 0] = 1.0
    x[3] = 128 / 255
    for log_scale_shift in [-10.0, 0.0, 10.0]:
        params = torch.randn(4, lik.num_params(3), 2, 2) * 5
        params = (params + log_scale_shift).requires_grad_(True)
        lp = lik(params).log_prob(x)
        assert torch.isfinite(lp).all()
        lp.sum().backward()
        assert torch.isfinite(params.grad).all()


def test_bernoulli_and_gaussian_match_torch():
    torch.manual_seed(1)
    logits = torch.randn(5, 1, 4, 4)
    x = torch.bernoulli(torch.full((5, 1, 4, 4), 0.5))
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(Bernoulli()(logits).log_prob(x), expected)
    g = Gaussian(scale=0.3, value_range=(-1.0, 1.0))
    xg = torch.rand(5, 1, 4, 4) * 2 - 1
    loc = -1 + 2 * torch.sigmoid(logits)
    expected = torch.distributions.Normal(loc, 0.3).log_prob(xg).sum((1, 2, 3))
    assert torch.allclose(g(logits).log_prob(xg), expected)
    lap = Laplace(scale=0.2)
    expected = torch.distributions.Laplace(torch.sigmoid(logits), 0.2).log_prob(x).sum((1, 2, 3))
    assert torch.allclose(lap(logits).log_prob(x), expected)


def test_bernoulli_refuses_continuous_data_unless_told():
    x = torch.rand(4, 1, 4, 4)
    with pytest.raises(DataError, match="continuous data"):
        Bernoulli().check(x)
    Bernoulli(probabilities=True).check(x)


def test_discretized_refuses_data_off_the_8bit_grid():
    with pytest.raises(DataError, match="8-bit"):
        DiscretizedLogistic().check(torch.full((2, 3), 0.5))
    DiscretizedLogistic().check(torch.full((2, 3), 128 / 255))


def test_mixture_mean_and_samples_stay_in_range():
    lik = DiscretizedLogisticMixture(components=3, value_range=(-1.0, 1.0))
    lik.bind((3, 4, 4))
    d = lik(torch.randn(6, lik.num_params(3), 4, 4))
    s = d.sample()
    assert s.shape == (6, 3, 4, 4) and s.min() >= -1 and s.max() <= 1
    assert torch.allclose((s + 1) / 2 * 255, torch.round((s + 1) / 2 * 255), atol=1e-4)
    assert d.mean.shape == (6, 3, 4, 4) and d.mean.min() >= -1 and d.mean.max() <= 1
    assert d.sample((2,)).shape == (2, 6, 3, 4, 4)
    # one component, one channel: the mean is the single discretized logistic's
    one = DiscretizedLogisticMixture(components=1)
    one.bind((1, 1, 1))
    params = torch.tensor([[[[0.0]], [[0.2]], [[-2.0]]]])
    single = DiscretizedLogistic()(params[:, 1:])
    assert torch.allclose(one(params).mean, single.mean, atol=1e-6)
    probs = single.log_prob(LEVELS.view(256, 1, 1, 1)).exp()
    assert single.mean.item() == pytest.approx(float((probs * LEVELS).sum()), abs=1e-5)


LIKELIHOODS = ["gaussian", "bernoulli", "laplace", "discretized-logistic", "discretized-logistic-mixture"]


@pytest.mark.parametrize("name", LIKELIHOODS)
def test_every_likelihood_trains_a_model(name):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 8, 8)).float() / 255
    x[:, :, 2:6, 2:6] = 1.0
    if name == "bernoulli":
        x = torch.bernoulli(x)
    options = {"components": 2} if name == "discretized-logistic-mixture" else {}
    lik = likelihood(name, **options)
    model = VLAE((1, 8, 8), (2, 2), lik, stem="small", width=0.125)
    model.check_data(x)
    trainer = Trainer(model, x, batch_size=32, lr=3e-3)
    losses = [trainer.step() for _ in range(30)]
    assert all(map(torch.isfinite, torch.tensor(losses)))
    assert sum(losses[-5:]) < sum(losses[:5])
    model.eval()
    samples = Predictive(model.model, num_samples=1, return_sites=["x"])(batch_size=3)["x"]
    assert samples.shape == (1, 3, 1, 8, 8)
    assert model.generate(2).shape == (2, 1, 8, 8)
    pyro.clear_param_store()
