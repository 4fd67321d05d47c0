import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def fresh_pyro():
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    torch.set_num_threads(2)
    yield
    pyro.clear_param_store()


@pytest.fixture(scope="session")
def tiny_shapes():
    from pyro_vlae.data import make_shapes

    return make_shapes(128, seed=3)
