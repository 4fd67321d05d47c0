"""The CUDA code paths: the default trainer (whole-step CUDA graph), resume, bf16,
channels-last, evaluation and diagnostics on the GPU. Skipped where PyTorch sees no CUDA
device; ``python -m pytest -m cuda`` runs just these."""

import copy

import pyro
import pytest
import torch
from conftest import fit_args, run

from pyro_vlae import VLAE, KLWarmup, Trainer, build_model
from pyro_vlae.train.compiled import CUDAGraphStep

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (PyTorch sees none)"),
]

DEVICE = torch.device("cuda")


@pytest.fixture
def shapes(tiny_shapes):
    return tiny_shapes.x.to(DEVICE)


@pytest.fixture(autouse=True)
def deterministic_kernels(monkeypatch):
    """cuDNN's deterministic kernels, chosen without benchmarking: eager steps and graph
    replays then run the same kernels, and comparisons need no slack for atomics."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)


def small_vlae(**kwargs):
    return VLAE((3, 32, 32), (2, 2), width=0.125, **kwargs).to(DEVICE)


@pytest.mark.parametrize("name", ["vlae", "hvae", "lvae"])
def test_default_trainer_captures_one_graph_and_learns(name, shapes):
    model = build_model(name, (3, 32, 32), (2, 2), width=0.125).to(DEVICE)
    trainer = Trainer(model, shapes, batch_size=32, lr=2e-3, warmup=KLWarmup(20))
    assert isinstance(trainer.compiled, CUDAGraphStep)
    assert trainer.optim.param_groups[0]["capturable"] and trainer.optim.param_groups[0]["fused"]
    losses = torch.stack([trainer.train_step() for _ in range(60)]).cpu()
    assert torch.isfinite(losses).all()
    assert losses[-10:].mean() < 0.8 * losses[:10].mean()
    assert trainer.compiled.failed is None and trainer.compiled.captures == 1
    assert next(model.parameters()).is_cuda and trainer.step_count == 60


@pytest.mark.parametrize("elbo", ["trace", "meanfield"])
def test_graph_step_agrees_with_the_eager_step(elbo, shapes):
    """Same seed, same batches: the replayed graph computes the eager step's losses and
    parameters (its random draws advance the CUDA generator as the eager ops do)."""
    base = small_vlae()
    results = {}
    for name, compile in (("eager", False), ("graph", True)):
        trainer = Trainer(copy.deepcopy(base), shapes, batch_size=32, elbo=elbo, warmup=KLWarmup(5), compile=compile)
        pyro.set_rng_seed(3)
        losses = torch.stack([trainer.train_step() for _ in range(12)])
        results[name] = (losses, trainer.model.state_dict())
    torch.testing.assert_close(results["graph"][0], results["eager"][0], rtol=1e-4, atol=1e-4)
    for k, a in results["eager"][1].items():
        torch.testing.assert_close(results["graph"][1][k], a, rtol=1e-4, atol=1e-5, msg=k)


def test_resume_gives_the_same_result(shapes):
    base = small_vlae()
    pyro.set_rng_seed(4)
    full = Trainer(copy.deepcopy(base), shapes, batch_size=32, warmup=KLWarmup(5))
    init = copy.deepcopy(full.state_dict())  # state_dict() holds the live tensors
    whole = torch.stack([full.train_step() for _ in range(10)])
    part = Trainer(copy.deepcopy(base), shapes, batch_size=32, warmup=KLWarmup(5))
    part.load_state_dict(init)
    first = [part.train_step() for _ in range(5)]  # warm-up steps, capture, replays
    saved = copy.deepcopy(part.state_dict())
    resumed = Trainer(copy.deepcopy(base), shapes, batch_size=32, warmup=KLWarmup(5))
    resumed.load_state_dict(saved)
    rest = [resumed.train_step() for _ in range(5)]
    torch.testing.assert_close(torch.stack(first + rest), whole, rtol=1e-5, atol=1e-5)
    for k, a in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], a, rtol=1e-5, atol=1e-6, msg=k)
    # loading into a trainer that has captured drops the graph, which held the old Adam state
    part.load_state_dict(saved)
    assert part.compiled.graph is None


def test_bf16_trains_and_stays_near_float32(shapes):
    base = small_vlae()
    losses = {}
    for bf16 in (False, True):
        trainer = Trainer(copy.deepcopy(base), shapes, batch_size=32, lr=2e-3, bf16=bf16)
        pyro.set_rng_seed(5)
        losses[bf16] = torch.stack([trainer.train_step() for _ in range(20)])
    assert torch.isfinite(losses[True]).all()
    torch.testing.assert_close(losses[True], losses[False], rtol=0.1, atol=0.0)


def test_channels_last_images_and_weights(shapes):
    base = small_vlae()
    trainer = Trainer(copy.deepcopy(base), shapes, batch_size=32)  # default on CUDA for images
    assert trainer.data.is_contiguous(memory_format=torch.channels_last)
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    plain = Trainer(copy.deepcopy(base), shapes, batch_size=32, channels_last=False)
    results = []
    for t in (trainer, plain):
        pyro.set_rng_seed(6)
        results.append(torch.stack([t.train_step() for _ in range(8)]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-3, atol=1e-3)


def test_evaluation_on_the_gpu(shapes):
    from pyro_vlae.evaluate import iwae_bound, posterior_statistics

    model = small_vlae()
    Trainer(model, shapes, batch_size=32).train_step()
    model.eval()
    x = shapes[:16]
    bound = iwae_bound(model, x, num_samples=50, chunk=10)
    values = torch.stack([torch.as_tensor(v).float().mean() for v in bound.values() if torch.is_tensor(v)])
    assert torch.isfinite(values).all()
    stats = posterior_statistics(model, shapes[:64], batch_size=32)
    assert stats
    terms = model.elbo_terms(x)
    assert terms["recon"].is_cuda and terms["kl"].shape == (16, 2)


def test_diagnostics_on_the_gpu(shapes):
    from pyro_vlae.diagnostics import gibbs_chain, traversal

    model = small_vlae().eval()
    chain = gibbs_chain(model, shapes[:4], steps=3)
    assert chain.is_cuda and torch.isfinite(chain).all()
    grid = traversal(model, layer=1)
    assert torch.isfinite(grid).all()
    assert model.generate(3, fixed={"z2": torch.zeros(3, 2, device=DEVICE)}).shape == (3, 3, 32, 32)


def test_fit_on_cuda(tmp_path):
    import json

    args = ["fit", *fit_args(8, z_dims="2", log_every=4), "--device", "cuda"]
    r = run(*args, "--bf16", "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["bf16"] is True
    r = run("fit", "--resume", "--out", str(tmp_path / "run"), "--steps", "12", "--no-progress")
    assert r.exit_code == 0, r.output
