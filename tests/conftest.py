import pyro
import pytest
import torch
from click.testing import CliRunner, Result

from pyro_vlae.cli import main


def run(*args) -> Result:
    """Invoke ``pyro-vlae ARGS`` in this process; paths and numbers are passed as strings."""
    return CliRunner().invoke(main, [str(a) for a in args])


def fit_args(
    steps: int | None = 4,
    *,
    num_train: int | None = 64,
    num_test: int = 16,
    z_dims: str = "2,2",
    batch_size: int = 16,
    log_every: int | None = 2,
) -> list[str]:
    """The options of a seconds-long ``pyro-vlae fit``: a tiny network on ``num_train``
    embedded shapes (``None``: the data set's own size, for other plugins), no progress bar;
    ``steps`` or ``log_every`` ``None`` leaves that option out."""
    data = [] if num_train is None else ["-P", f"num_train={num_train}", "-P", f"num_test={num_test}"]
    args = [*data, "--z-dims", z_dims, "--width", "0.125"]
    args += [] if steps is None else ["--steps", str(steps)]
    args += ["--batch-size", str(batch_size)]
    args += [] if log_every is None else ["--log-every", str(log_every)]
    return [*args, "--no-progress"]


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
