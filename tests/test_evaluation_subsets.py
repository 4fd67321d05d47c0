"""`evaluate` repeats exactly and compares like with like: IWAE and ELBO on one random subset."""

import pyro
import torch

from pyro_vlae.data import TensorData
from pyro_vlae.evaluate import evaluate
from pyro_vlae.evaluate.evaluation import random_subset, subset
from pyro_vlae.models import VLAE


def sorted_data(n=60):
    """A test set sorted by class, as binarized MNIST's is: the first points are all one kind."""
    x = torch.cat([torch.full((n // 2, 6), 0.1), torch.full((n // 2, 6), 0.9)]) + 0.05 * torch.rand(n, 6)
    return TensorData(x)


def model():
    pyro.set_rng_seed(1)
    return VLAE((6,), (2, 2), width=0.1).eval()


def test_same_seed_same_numbers_and_the_callers_random_state_is_untouched():
    m, data = model(), sorted_data()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = evaluate(m, data, iwae_samples=5, iwae_points=10, seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert evaluate(m, data, iwae_samples=5, iwae_points=10, seed=0) == a
    b = evaluate(m, data, iwae_samples=5, iwae_points=10, seed=1)
    assert b["iwae"]["value"] != a["iwae"]["value"] and b["elbo"] != a["elbo"]


def test_iwae_points_are_a_random_subset_with_the_elbo_of_the_same_points():
    m, data = model(), sorted_data()
    chosen = random_subset(len(data), 10, seed=0)
    assert len(set(chosen.tolist())) == 10 and (chosen < 30).any() and (chosen >= 30).any()
    assert torch.equal(chosen, random_subset(len(data), 10, seed=0))
    assert torch.equal(random_subset(8, 10, seed=0), torch.arange(8))
    full = evaluate(m, data, iwae_samples=5, iwae_points=10, seed=0)
    assert full["iwae"]["points"] == "random subset, seed 0" and full["iwae"]["num_points"] == 10
    # the ELBO reported beside the IWAE is the ELBO of those very points (the same seed draws the same z)
    alone = evaluate(m, subset(data, chosen), iwae_samples=5, iwae_points=10, seed=0)
    assert alone["iwae"]["points"] == "all"
    per_point = torch.tensor([alone["elbo"]])
    assert abs(full["iwae"]["elbo"] - float(per_point)) < 0.05 * abs(float(per_point))
    assert full["iwae"]["value"] >= full["iwae"]["elbo_same_draws"]
