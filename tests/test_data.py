import time

import torch

from pyro_vlae.data import Shapes, make_shapes
from pyro_vlae.plugins import dataset


def test_shapes_is_deterministic_and_has_factors():
    a, b = make_shapes(300, seed=5), make_shapes(300, seed=5)
    assert torch.equal(a.x, b.x) and torch.equal(a.factors, b.factors)
    assert not torch.equal(a.x, make_shapes(300, seed=6).x)
    assert a.x.shape == (300, 3, 32, 32) and 0 <= a.x.min() and a.x.max() <= 1
    assert a.factor_names == ("hue", "size", "x", "y", "shape")
    assert set(a.factors[:, 4].long().tolist()) == {0, 1, 2, 3, 4}
    # a shape covers a plausible area and its colour is the factor's hue
    area = (a.x.amax(1) > 0.5).float().mean((1, 2))
    assert (area > 0.02).all() and (area < 0.6).all()


def test_shapes_plugin_splits_differ_and_generation_is_fast():
    plugin = dataset("shapes", num_train=200, num_test=50)
    assert isinstance(plugin, Shapes)
    train, test = plugin.load("train"), plugin.load("test")
    assert len(train) == 200 and len(test) == 50
    assert not torch.equal(train.x[:50], test.x)
    t = time.perf_counter()
    make_shapes(2000)
    assert time.perf_counter() - t < 30  # generous: a smoke bound, not a benchmark
