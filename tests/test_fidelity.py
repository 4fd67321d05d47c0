"""Sample fidelity on hand-built generators of `shapes` images with known answers."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import pyro_method

from pyro_vlae.data import Shapes, make_shapes
from pyro_vlae.data.shapes import hue_to_rgb
from pyro_vlae.evaluate import intervention_metrics, narrow_factors, reader_for, sample_fidelity
from pyro_vlae.evaluate.fidelity import circular_tv, scaled_wasserstein, total_variation
from pyro_vlae.evaluate.tables import format_intervention
from pyro_vlae.models.base import LatentModel

OPTIONS = {"num_train": 4000, "num_test": 500}


class Copier(LatentModel):
    """z1 ~ N(0, 1) picks one image of ``bank`` uniformly (Φ(z1)); ``colour`` repaints its
    shape in one fixed hue. The guide is the prior (only sampling is tested)."""

    def __init__(self, bank: torch.Tensor, colour: float | None = None) -> None:
        super().__init__(tuple(bank.shape[1:]), (1,))
        if colour is not None:
            bank = bank.amax(1, keepdim=True) * hue_to_rgb(torch.tensor([colour]))[:, :, None, None]
        self.bank = bank

    @pyro_method
    def model(self, x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        with plate:
            z = pyro.sample("z1", dist.Normal(self._zero, 1.0).expand([batch, 1]).to_event(1))
            index = (dist.Normal(0.0, 1.0).cdf(z[:, 0]) * len(self.bank)).long().clamp(max=len(self.bank) - 1)
            return pyro.sample("x", dist.Normal(self.bank[index], 0.1).to_event(3), obs=x)

    @pyro_method
    def guide(self, x, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        with self.data_plate(x, num_data, subsample, batch_size)[0]:
            pyro.sample("z1", dist.Normal(self._zero, 1.0).expand([x.shape[0], 1]).to_event(1))


@pytest.fixture(scope="module")
def reader():
    """The `shapes` reader, trained on fewer images for fewer steps than by default (held-out
    quality about 0.94 for the shape class, above 0.97 for the others)."""
    return reader_for(Shapes(**OPTIONS), OPTIONS, steps=1500)


@pytest.fixture(scope="module")
def bank():
    """Images the hand-built generators copy: `shapes` drawn with another seed than the test images."""
    return make_shapes(4000, seed=11).x


@pytest.fixture(scope="module")
def test_images():
    return make_shapes(2000, seed=12)


def test_distances_on_known_distributions():
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert total_variation(a, torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 1.0])) == pytest.approx(0.25)
    assert circular_tv(torch.full((10,), 0.3), torch.linspace(0, 0.99, 10), bins=10) == pytest.approx(0.9)
    assert circular_tv(torch.tensor([0.99, 0.01]), torch.tensor([1.99, 1.01]), bins=10) == 0  # phases wrap
    # shifting a distribution by d moves it W1 = d; here d = one standard deviation of the data
    real = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    assert scaled_wasserstein(real + real.std(), real) == pytest.approx(1.0)
    assert math.isnan(scaled_wasserstein(real, torch.zeros(5000)))


def test_a_generator_that_copies_the_data_is_at_distance_zero(reader, bank, test_images):
    fid = sample_fidelity(Copier(bank), test_images, reader, num_samples=2000)
    assert fid.factors[:5] == ["hue", "size", "x", "y", "shape"] and "colour" in fid.factors
    assert fid.kinds["hue"] == "circular" and fid.kinds["shape"] == "categorical" and fid.kinds["ink"] == "statistic"
    # two independent sets of 2000 from one distribution: sampling noise only (about 0.03 to 0.05
    # for the TV of 12 bins and for W1/sd; the largest of 12 factors is higher)
    assert max(fid.distance.values()) < 0.15, fid.distance
    for name in fid.factors:
        assert fid.sample_spread[name] == pytest.approx(fid.data_spread[name], rel=0.15), name
    assert fid.confident_data > 0.3 and fid.confident == pytest.approx(fid.confident_data, abs=0.06)


def test_a_generator_that_paints_one_colour_has_hue_distance_near_one(reader, bank, test_images):
    fid = sample_fidelity(Copier(bank, colour=0.3), test_images, reader, num_samples=2000)
    # every sample in one of 12 hue bins against a uniform hue: TV = 11/12
    assert fid.distance["hue"] > 0.85, fid.distance
    assert fid.distance["colour"] > 1.0
    assert fid.distance["x"] < 0.15 and fid.distance["y"] < 0.15  # the shapes themselves are the data's
    assert fid.sample_spread["hue"] < 0.1 * fid.data_spread["hue"]
    again = sample_fidelity(Copier(bank, colour=0.3), test_images, reader, num_samples=2000)
    assert again.to_json() == fid.to_json()  # the same seed, the same numbers


def test_a_narrow_factor_is_flagged_next_to_the_intervention_matrix(reader, bank, test_images):
    model = Copier(bank, colour=0.3)
    fid = sample_fidelity(model, test_images, reader, num_samples=400)
    matrix = intervention_metrics(model, reader, num_pairs=200, min_reader_quality=0)
    matrix.narrow = narrow_factors(matrix, fid)
    iv = matrix.to_json()
    assert "hue" in iv["narrow"] and "x" not in iv["narrow"] and "shape" not in iv["narrow"]
    assert any("hardly vary in hue" in line for line in format_intervention(matrix))
    wide = Copier(bank)
    assert narrow_factors(intervention_metrics(wide, reader, num_pairs=200, min_reader_quality=0),
                          sample_fidelity(wide, test_images, reader, num_samples=400)) == {}
