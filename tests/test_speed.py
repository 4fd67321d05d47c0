"""The trainer's fast path: the JIT ELBO traces once for a whole warm-up schedule and keeps
training the live parameters (a regression guard that times nothing)."""

import pyro
import pytest
import torch

from pyro_vlae import VLAE, KLWarmup, Trainer, build_model
from pyro_vlae.train import make_elbo


@pytest.mark.parametrize("elbo", ["trace", "meanfield"])
def test_jit_traces_once_for_a_whole_warmup_schedule(elbo, monkeypatch):
    traces = []
    original = torch.jit.trace

    def counting_trace(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.jit, "trace", counting_trace)
    data = torch.rand(64, 12)
    model = VLAE((12,), (2, 2), width=0.05)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, data, batch_size=16, elbo=elbo, jit=True, warmup=KLWarmup(6))
    betas = set()
    for _ in range(10):  # six warm-up steps (six values of β), then β = 1, across three epochs
        betas.add(trainer.beta)
        trainer.step()
    assert len(betas) == 7 and trainer.step_count > 2 * trainer.batches_per_epoch
    assert len(traces) == 1
    # the compiled ELBO reads the live parameters and updates the batch-norm statistics
    assert not torch.equal(init["inference.0.0.1.running_mean"], model.state_dict()["inference.0.0.1.running_mean"])
    assert not torch.equal(init["ladder.0.loc.weight"], model.ladder[0].loc.weight)
    x, beta = data[:16], trainer.betas[-1]
    losses = []
    for loss_fn in (trainer.elbo, make_elbo(elbo)):
        pyro.set_rng_seed(5)
        losses.append(float(loss_fn.differentiable_loss(trainer._model_fn, trainer._guide_fn, x, beta)))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert len(traces) == 1


def test_bf16_is_refused_on_the_cpu(tiny_shapes):
    from pyro_vlae.errors import ConfigError

    with pytest.raises(ConfigError, match="CUDA"):
        Trainer(VLAE((3, 32, 32), (2,), width=0.125), tiny_shapes.x, bf16=True)


@pytest.mark.parametrize("name", ["vlae", "hvae", "lvae"])
def test_benchmark_reference_loop_computes_the_same_elbo(name):
    """The hand-written baseline of benchmarks/ optimises exactly the library's objective."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reference.py"
    spec = importlib.util.spec_from_file_location("benchmark_reference", path)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)

    model = build_model(name, (12,), (2, 3, 2), width=0.05)
    x, beta = torch.rand(16, 12), torch.tensor(0.3)
    trainer = Trainer(model, torch.rand(100, 12), batch_size=16, warmup=KLWarmup(10))
    pyro.set_rng_seed(3)
    library = make_elbo("trace").differentiable_loss(trainer._model_fn, trainer._guide_fn, x, beta)
    pyro.set_rng_seed(3)
    hand = reference.elbo_loss(model, x, 100, beta)
    assert float(hand) == pytest.approx(float(library), rel=1e-5)
    pyro.set_rng_seed(4)
    assert float(reference.elbo_loss(model, x, 100, beta)) != pytest.approx(float(library), rel=1e-5)


def test_fit_cli_speed_options(tmp_path):
    import json

    from click.testing import CliRunner

    from pyro_vlae.cli import main

    small = ["fit", "-P", "num_train=64", "-P", "num_test=16", "--z-dims", "2", "--width", "0.125", "--steps", "4",
             "--batch-size", "16", "--log-every", "2", "--no-progress"]
    r = CliRunner().invoke(main, [*small, "--jit", "--out", str(tmp_path / "jit")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "jit" / "config.json").read_text())["jit"] is True
    r = CliRunner().invoke(main, [*small, "--bf16", "--device", "cpu", "--out", str(tmp_path / "bf16")])
    assert r.exit_code != 0 and "--bf16 needs a CUDA device" in r.output
    assert not (tmp_path / "bf16" / "checkpoint.pt").exists()
