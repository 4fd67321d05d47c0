"""`evaluate` repeats exactly and compares like with like: IWAE and ELBO on one random subset."""

import pyro
import pytest
import torch

from pyro_vlae.data import Data, TensorData
from pyro_vlae.encode import encode
from pyro_vlae.evaluate import evaluate
from pyro_vlae.evaluate.evaluation import random_subset
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
    a = evaluate(m, data, iwae_samples=5, iwae_points=10, seed=0).to_json()
    assert torch.equal(torch.get_rng_state(), before)
    assert evaluate(m, data, iwae_samples=5, iwae_points=10, seed=0).to_json() == a
    b = evaluate(m, data, iwae_samples=5, iwae_points=10, seed=1).to_json()
    assert b["iwae"]["value"] != a["iwae"]["value"] and b["elbo"] != a["elbo"]


def test_iwae_points_are_a_random_subset_with_the_elbo_of_the_same_points():
    m, data = model(), sorted_data()
    chosen = random_subset(len(data), 10, seed=0)
    assert len(set(chosen.tolist())) == 10 and (chosen < 30).any() and (chosen >= 30).any()
    assert torch.equal(chosen, random_subset(len(data), 10, seed=0))
    assert torch.equal(random_subset(8, 10, seed=0), torch.arange(8))
    full = evaluate(m, data, iwae_samples=5, iwae_points=10, seed=0).to_json()
    assert full["iwae"]["points"] == "random subset, seed 0" and full["iwae"]["num_points"] == 10
    # the ELBO reported beside the IWAE is the ELBO of those very points (the same seed draws the same z)
    alone = evaluate(m, data.subset(chosen), iwae_samples=5, iwae_points=10, seed=0).to_json()
    assert alone["iwae"]["points"] == "all"
    per_point = torch.tensor([alone["elbo"]])
    assert abs(full["iwae"]["elbo"] - float(per_point)) < 0.05 * abs(float(per_point))
    assert full["iwae"]["value"] >= full["iwae"]["elbo_same_draws"]


class Listed(Data):
    """A data container of the caller's own, known to the library only through :class:`Data`."""

    def __init__(self, points: list[torch.Tensor]) -> None:
        self.points = points

    def __len__(self) -> int:
        return len(self.points)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.points[0].shape)

    def head(self, n=None) -> torch.Tensor:
        return torch.stack(self.points[:n])

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield torch.stack(self.points[start : start + batch_size])

    def points_to_check(self, batch_size: int) -> torch.Tensor:
        return self.head()

    def for_training(self, device) -> torch.Tensor:
        return self.head().to(device)


def test_evaluate_and_encode_take_any_data_container():
    m, data = model(), sorted_data()
    own = Listed(list(data.x))
    options = {"iwae_samples": 5, "iwae_points": 10, "seed": 0, "intervention": False}
    mine, theirs = evaluate(m, own, **options).to_json(), evaluate(m, data, **options).to_json()
    assert mine.keys() == theirs.keys() and mine["iwae"]["points"] == theirs["iwae"]["points"]
    for key in ("elbo", "recon"):
        assert mine[key] == pytest.approx(theirs[key], rel=1e-5)
    assert mine["iwae"]["value"] == pytest.approx(theirs["iwae"]["value"], rel=1e-5)
    assert torch.equal(own.subset(torch.tensor([3, 1])).head(), data.x[[3, 1]])
    mine, theirs = encode(m, own, batch_size=7), encode(m, data, batch_size=7)
    assert mine.keys() == theirs.keys()
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key])
