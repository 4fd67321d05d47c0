"""The interventional layer × factor matrix on hand-built decoders with known answers."""

import logging
import math
import random

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import pyro_method

from pyro_vlae.data import TensorData
from pyro_vlae.data.shapes import Shapes, hue_to_rgb, shape_masks
from pyro_vlae.evaluate import ReaderError, image_statistics, intervention_metrics, reader_for, train_reader
from pyro_vlae.evaluate import reader as reader_module
from pyro_vlae.models.base import LatentModel

SIZE = 16
SHAPES = (0.0, 3.0)  # square, cross
LEVELS = {"hue": 1, "x": 2, "shape": 3}


def paint(hue: torch.Tensor, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """One shape of colour ``hue`` at horizontal position ``x`` per image, ``(N, 3, 16, 16)``."""
    size, y = torch.full_like(x, 0.45), torch.zeros_like(x)
    return shape_masks(shape.long(), size, x, y, SIZE)[:, None] * hue_to_rgb(hue)[:, :, None, None]


def painted_data(n: int, seed: int) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    hue, x = torch.rand(n, generator=g), 0.6 * torch.rand(n, generator=g) - 0.3
    shape = torch.tensor(SHAPES)[torch.randint(2, (n,), generator=g)]
    return TensorData(paint(hue, x, shape), torch.stack([hue, x, shape], 1), ("hue", "x", "shape"))


class Decoder(LatentModel):
    """A hand-built generator; its guide is the N(0, I) prior (only sampling is tested)."""

    @pyro_method
    def guide(self, x, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        with self.data_plate(x, num_data, subsample, batch_size)[0]:
            for name, d in zip(self.latent_sites, self.z_dims):
                pyro.sample(name, dist.Normal(self._zero, 1.0).expand([x.shape[0], d]).to_event(1))


class Painter(Decoder):
    """z ~ N(0, I); the image is drawn from z1 (hue), z2 (position), z3 (shape class) only,
    or from the layers ``order`` names (0-based) for these three. ``ignored`` adds a fourth
    layer the image does not depend on."""

    def __init__(self, ignored: bool = False, order: tuple[int, int, int] = (0, 1, 2)) -> None:
        super().__init__((3, SIZE, SIZE), (1, 1, 1, 1) if ignored else (1, 1, 1))
        self.order = order

    @pyro_method
    def model(self, x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        with plate:
            z = [pyro.sample(name, dist.Normal(self._zero, 1.0).expand([batch, d]).to_event(1))
                 for name, d in zip(self.latent_sites, self.z_dims)]
            hue, x, shape = (z[i][:, 0] for i in self.order)
            shape = torch.where(shape > 0, SHAPES[1], SHAPES[0])
            mean = paint(dist.Normal(0.0, 1.0).cdf(hue), 0.3 * torch.tanh(x), shape)
            return pyro.sample("x", dist.Normal(mean, 0.1).to_event(3), obs=x)


class Chain(Decoder):
    """A Markov chain z2 ~ N(0, 1), z1 ~ N(z2, 0.05²); the image's position is z1."""

    def __init__(self) -> None:
        super().__init__((3, SIZE, SIZE), (1, 1))

    @pyro_method
    def model(self, x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        with plate:
            z2 = pyro.sample("z2", dist.Normal(self._zero, 1.0).expand([batch, 1]).to_event(1))
            z1 = pyro.sample("z1", dist.Normal(z2, 0.05).to_event(1))
            mean = paint(torch.full_like(z1[:, 0], 0.3), 0.3 * torch.tanh(z1[:, 0]), torch.zeros_like(z1[:, 0]))
            return pyro.sample("x", dist.Normal(mean, 0.1).to_event(3), obs=x)


@pytest.fixture(scope="module")
def reader():
    return train_reader(painted_data(2000, 0), painted_data(400, 1), circular_factors=("hue",), steps=600)


def test_reader_reads_painted_factors(reader):
    assert reader.factor_names == ("hue", "x", "shape")
    assert [s.kind for s in reader.specs] == ["circular", "continuous", "categorical"]
    assert min(reader.quality.values()) > 0.9, reader.quality
    reader.check()


def test_one_factor_per_layer_gives_a_diagonal_matrix(reader):
    out = intervention_metrics(Painter(), reader, factor_levels=LEVELS, num_pairs=400, batch_size=150).to_json()
    assert out["factors"][:3] == ["hue", "x", "shape"] and out["layers"] == ["z1", "z2", "z3"]
    m = torch.tensor([row[:3] for row in out["intervention"]])
    assert torch.all(m.diagonal() > 0.85), m
    assert torch.all(m - torch.diag(m.diagonal()) < 0.1), m
    assert out["ordering_intervention"] > 0.85
    # the colour statistic follows z1 (anti-aliased edges move it a little), the centroid z2 alone
    colour, cx = out["factors"].index("colour"), out["factors"].index("centroid_x")
    assert out["intervention"][0][colour] > 0.9 and max(row[colour] for row in out["intervention"][1:]) < 0.1
    assert out["intervention"][0][cx] == 0 and out["intervention"][1][cx] > 0.9
    # normalised = change / baseline
    k = out["factors"].index("x")
    assert out["intervention"][1][k] == pytest.approx(out["change"][1][k] / out["baseline"][k], abs=1e-3)


def test_reversed_hierarchy_scores_negative(reader):
    out = intervention_metrics(Painter(order=(2, 1, 0)), reader, factor_levels=LEVELS, num_pairs=300).to_json()
    assert out["ordering_intervention"] < -0.85


def test_ignored_layer_gives_a_zero_row(reader):
    out = intervention_metrics(Painter(ignored=True), reader, factor_levels=LEVELS, num_pairs=200).to_json()
    assert out["intervention"][3] == [0.0] * len(out["factors"])
    assert all(v > 0 for v in out["baseline"][:3])


def test_markov_chain_redraws_the_noise_of_one_layer():
    # re-drawing ε2 moves z1 = z2 + 0.05 ε1 with it; re-drawing ε1 barely moves it
    out = intervention_metrics(Chain(), None, num_pairs=300).to_json()
    cx = out["factors"].index("centroid_x")
    assert out["intervention"][1][cx] > 0.8 and out["intervention"][0][cx] < 0.15
    assert out["reader"] is None and "hue" not in out["factors"]


def test_same_seed_same_matrix():
    a = intervention_metrics(Chain(), None, num_pairs=50, seed=3).to_json()
    b = intervention_metrics(Chain(), None, num_pairs=50, seed=3).to_json()
    assert a["change"] == b["change"]


def test_reader_trained_on_noise_is_refused():
    g = torch.Generator().manual_seed(0)
    noise = TensorData(torch.rand(600, 3, SIZE, SIZE, generator=g),
                       torch.stack([torch.rand(600, generator=g), torch.randint(3, (600,), generator=g).float()], 1),
                       ("size", "shape"))
    bad = train_reader(noise, steps=100)
    assert max(bad.quality.values()) < 0.5
    with pytest.raises(ReaderError, match="too poorly"):
        intervention_metrics(Painter(), bad, num_pairs=10)


def test_image_statistics_on_drawn_images():
    img = torch.zeros(3, 1, 20, 20)
    img[0, 0, 2:18, 3:6] = 1  # an upright bar, left
    img[1, 0, 2:18, 12:18] = 1  # a thicker upright bar, right
    for r in range(16):  # a stroke leaning right: its top is right of its bottom
        img[2, 0, 2 + r, 14 - r // 2 : 17 - r // 2] = 1
    s = image_statistics(img)
    assert set(s) == {"brightness", "ink", "centroid_x", "centroid_y", "spread", "slant", "width"}
    assert s["centroid_x"][0, 0] < -0.3 < 0.3 < s["centroid_x"][1, 0]
    assert s["centroid_y"][:2, 0].abs().max() < 1e-5 and s["brightness"][:, 0].tolist() == [1.0, 1.0, 1.0]
    assert s["width"][1, 0] > 1.5 * s["width"][0, 0]
    assert s["slant"][0, 0].abs() < 1e-5 and s["slant"][2, 0] < -0.2
    rgb = image_statistics(torch.rand(2, 3, 8, 8))
    assert rgb["colour"].shape == (2, 3) and "brightness" not in rgb


def test_reader_is_cached_per_data_set_and_options(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path / "cache"))
    plugin = Shapes(num_train=200, num_test=50)
    first = reader_for(plugin, {"num_train": 200, "num_test": 50}, steps=5)
    files = list((tmp_path / "cache" / "readers").glob("shapes-*.pt"))
    assert len(files) == 1 and first.info["steps"] == 5 and first.info["heldout_points"] == 50

    def no_training(*args, **kwargs):
        raise AssertionError("the cached reader should have been used")

    monkeypatch.setattr(reader_module, "train_reader", no_training)
    again = reader_for(plugin, {"num_train": 200, "num_test": 50}, steps=5)
    assert again.quality == first.quality
    x = plugin.load("test").x[:7]
    assert torch.equal(again.read(x), first.read(x))
    with pytest.raises(AssertionError, match="cached"):  # other options: another reader
        reader_for(plugin, {"num_train": 201, "num_test": 50}, steps=5)


def test_reader_cache_tells_data_sets_apart_whose_options_agree(tmp_path, monkeypatch):
    """Two folders read with the same options (e.g. two SVHN copies at one --data-dir): the
    cache key holds a fingerprint of the images, so the second folder gets its own reader."""
    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path / "cache"))
    options = {"num_train": 200, "num_test": 50}
    reader_for(Shapes(**options), options, steps=5)
    trained = []
    real_train = reader_module.train_reader
    monkeypatch.setattr(reader_module, "train_reader", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    reader_for(Shapes(**options, seed=7), options, steps=5)
    assert trained == [1] and len(list((tmp_path / "cache" / "readers").glob("shapes-*.pt"))) == 2
    reader_for(Shapes(**options, seed=7), options, steps=5)
    assert trained == [1]  # the same images again: the cached reader


def test_circular_change_wraps_around():
    from pyro_vlae.evaluate.intervention import factor_change

    a, b = torch.tensor([[0.05], [0.5]]), torch.tensor([[0.95], [0.0]])
    assert factor_change(a, b, "circular").tolist() == pytest.approx([0.1, 0.5])
    assert factor_change(a, b, "continuous").tolist() == pytest.approx([0.9, 0.5])
    assert factor_change(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [3.0]]), "categorical").tolist() == [0, 1]
    assert math.isfinite(float(factor_change(a, b, "statistic").sum()))


def test_compare_averages_matrices_of_the_same_factors_only():
    from pyro_vlae.evaluate.report import format_comparison

    def row(run, factors, matrix):
        return {"run": run, "model": "vlae", "seed": 0, "data": "shapes", "num_layers": 2, "iwae_samples": 10,
                "elbo": 1.0, "iwae_10": 2.0, "kl": [1.0, 2.0],
                "active_units": [1, 1], "ordering_probe": None, "ordering_nmi": None, "mig": None,
                "ordering_intervention": 0.5, "intervention_layers": ["z1", "z2"],
                "intervention_factors": factors, "intervention": matrix}

    text = format_comparison([row("a", ["hue"], [[1.0], [0.0]]), row("b", ["hue"], [[0.5], [None]]),
                              row("c", ["label", "ink"], [[0.2, 0.4], [0.9, 0.1]])])
    assert "| z1 | 0.75 |" in text and "| z2 | 0.00 |" in text and "| z2 | 0.90 | 0.10 |" in text
    assert "mean over 2 run(s)" in text and "mean over 1 run(s)" in text


def test_a_cached_reader_of_random_bytes_is_trained_again(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path / "cache"))
    options = {"num_train": 200, "num_test": 50}
    reader_for(Shapes(**options), options, steps=5)
    (cached,) = (tmp_path / "cache" / "readers").glob("shapes-*.pt")
    cached.write_bytes(random.Random(0).randbytes(4096))
    with caplog.at_level(logging.INFO, logger="pyro_vlae"):
        reader_for(Shapes(**options), options, steps=5)
    said = caplog.messages
    assert any("unreadable or outdated" in line for line in said)


def test_a_refused_reader_gives_advice_that_can_help():
    """A reader that fits its few training images but not new ones is told that more steps
    will not help; one that has not learned its training images yet, to train longer."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, 1, 8, 8, generator=g)
    factors = torch.randint(2, (48, 1), generator=g).float()  # labels no image shows: only memorised
    train, heldout = TensorData(x[:32], factors[:32], ("label",)), TensorData(x[32:], factors[32:], ("label",))
    memorised = train_reader(train, heldout, steps=300, lr=3e-3)
    assert memorised.info["train_quality"]["label"] >= 0.9
    with pytest.raises(ReaderError, match="will not help") as err:
        memorised.check()
    assert "32 training images" in str(err.value) and "--no-intervention" in str(err.value)
    with pytest.raises(ReaderError, match="train it longer \\(--reader-steps 2\\)"):
        train_reader(train, heldout, steps=1).check()
