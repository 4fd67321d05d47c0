import pyro
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Keep what the library caches (staged files, factor readers) out of the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PYRO_VLAE_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


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
