"""The trainer's fast path: the JIT ELBO traces once for a whole warm-up schedule and keeps
training the live parameters (a regression guard that times nothing)."""

import inspect

import pyro
import pytest
import torch
from conftest import fit_args, run

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


@pytest.mark.parametrize("name", ["vlae", "hvae", "lvae"])
def test_jit_trains_the_default_conv_models_as_the_eager_step_does(name):
    """The JIT ELBO traces the networks' own weights, also in the channels-last layout of CUDA
    training and when Pyro's param store holds an earlier model's parameters of the same names."""
    import copy

    shape, data, beta = (1, 28, 28), torch.rand(64, 1, 28, 28), torch.tensor(0.5)
    earlier = build_model(name, shape, (2, 2, 2), name="same")
    earlier.model(data[:16], num_data=64, beta=beta)  # its param statements fill the store
    earlier.guide(data[:16], num_data=64, beta=beta)
    base = build_model(name, shape, (2, 2, 2), name="same")
    losses = {}
    for jit in (False, True):
        trainer = Trainer(copy.deepcopy(base), data, batch_size=16, jit=jit, channels_last=True, warmup=KLWarmup(4))
        trainer.differentiable_loss(data[:16], beta)  # the JIT ELBO traces here (its draws are its own)
        losses[jit] = []
        for step in range(3):
            pyro.set_rng_seed(step)
            losses[jit].append(float(trainer.train_step()))
    # the same first step; then Adam's first updates (±lr whatever a gradient's size) let the
    # two drift apart by rounding
    assert losses[True][0] == pytest.approx(losses[False][0], rel=1e-5)
    assert losses[True] == pytest.approx(losses[False], rel=1e-3)


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

    small = ["fit", *fit_args(z_dims="2")]
    r = run(*small, "--jit", "--out", str(tmp_path / "jit"))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "jit" / "config.json").read_text())["jit"] is True
    r = run(*small, "--bf16", "--device", "cpu", "--out", str(tmp_path / "bf16"))
    assert r.exit_code != 0 and "--bf16 needs a CUDA device" in r.output
    assert not (tmp_path / "bf16" / "checkpoint.pt").exists()


# ------------------------------------------------------------------ the default step
def _reference():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reference.py"
    spec = importlib.util.spec_from_file_location("benchmark_reference", path)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    return reference


class _Messages(pyro.poutine.messenger.Messenger):
    """Counts the messages of each type that reach the bottom of Pyro's handler stack."""

    def __init__(self):
        super().__init__()
        self.counts, self.samples = {}, []

    def _process_message(self, msg):
        self.counts[msg["type"]] = self.counts.get(msg["type"], 0) + 1
        if msg["type"] == "sample":
            self.samples.append(msg["name"])


@pytest.mark.parametrize("name", ["vlae", "hvae", "lvae"])
def test_default_step_sends_sample_sites_only(name):
    """One guide and one model run per step, and none of the dozens of parameter statements
    a PyroModule's context would send through every handler."""
    model = build_model(name, (12,), (2, 3, 2), width=0.05)
    trainer = Trainer(model, torch.rand(64, 12), batch_size=16)
    spy = _Messages()
    with spy:
        trainer.train_step()
    sites = ["z1", "z2", "z3"]
    assert spy.counts.get("param", 0) == 0
    # guide, then model replayed; each opens the sub-sampled "data" plate
    assert sorted(spy.samples) == sorted(["data", *sites, "data", *sites, "x"])


def test_pyro_managed_attributes_keep_the_module_context():
    from pyro.nn import PyroSample

    from pyro_vlae.train.trainer import plain_methods

    model = VLAE((12,), (2,), width=0.05)
    model_fn, guide_fn = plain_methods(model)
    assert model_fn.func is inspect.unwrap(type(model).model)  # the undecorated method
    model.extra = PyroSample(pyro.distributions.Normal(0.0, 1.0))  # now the context matters
    assert plain_methods(model) == (model.model, model.guide)


@pytest.mark.parametrize(
    ("name", "elbo"), [("vlae", "trace"), ("vlae", "meanfield"), ("hvae", "trace"), ("lvae", "trace")]
)
def test_trainer_loss_is_pyros_differentiable_loss(name, elbo):
    """The default step's loss and gradients are those of ``elbo.differentiable_loss`` on the
    library's decorated model and guide, from the same random draws."""
    model = build_model(name, (12,), (2, 3, 2), width=0.05)
    trainer = Trainer(model, torch.rand(100, 12), batch_size=16, elbo=elbo)
    x, beta = torch.rand(16, 12), torch.tensor(0.3)
    def decorated_model(x, b):
        return model.model(x, num_data=100, beta=b)

    def decorated_guide(x, b):
        return model.guide(x, num_data=100, beta=b)

    results = []
    for loss_fn in (
        lambda: trainer.differentiable_loss(x, beta),
        lambda: make_elbo(elbo).differentiable_loss(decorated_model, decorated_guide, x, beta),
    ):
        pyro.set_rng_seed(11)
        loss = loss_fn()
        grads = torch.autograd.grad(loss, trainer.params, allow_unused=True)
        results.append((loss.detach(), grads))
    (a, ga), (b, gb) = results
    assert float(a) == pytest.approx(float(b), rel=1e-6)
    for g1, g2 in zip(ga, gb):
        assert (g1 is None) == (g2 is None)
        if g1 is not None:
            torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value", [0.3, 0.0])
def test_a_tensor_beta_weighs_alike_with_validation_on_and_off(value):
    """With Pyro's validation off (the trainer's hot loop) a tensor β is ``poutine.scale``
    alone, with no mask per site; with validation on a zero tensor is masked out instead
    (Pyro's scale refuses 0). Loss and gradients are the same, bit for bit."""
    model = build_model("vlae", (12,), (2, 3, 2), width=0.05)
    trainer = Trainer(model, torch.rand(100, 12), batch_size=16)
    x, beta = torch.rand(16, 12), torch.tensor(value)
    results = []
    for validate in (True, False):
        pyro.set_rng_seed(11)
        with pyro.validation_enabled(validate):
            loss = trainer.differentiable_loss(x, beta)
        results.append((loss.detach(), torch.autograd.grad(loss, trainer.params, allow_unused=True)))
    (a, ga), (b, gb) = results
    assert torch.equal(a, b)
    for g1, g2 in zip(ga, gb):
        assert (g1 is None) == (g2 is None)
        assert g1 is None or torch.equal(g1, g2)


def test_python_calls_per_step_stay_near_the_hand_written_loop():
    """The interpreter work of a default step, counted (not timed): within 1.3× the Python
    calls of the hand-written ELBO loop on the same networks (about 1.2× when written)."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
    from run import python_calls

    reference = _reference()
    model = VLAE((784,), (2, 2, 2), stem="mlp", width=0.05)
    data = torch.rand(256, 784)
    trainer = Trainer(model, data, batch_size=16, warmup=KLWarmup(100))
    hand = reference.HandwrittenTrainer(VLAE((784,), (2, 2, 2), stem="mlp", width=0.05), 256)
    for _ in range(2):
        trainer.train_step()
        hand.step(data[:16], 0.5)
    trainer_calls = python_calls(trainer.train_step)
    hand_calls = python_calls(lambda: hand.step(data[:16], 0.5))
    assert trainer_calls < 1.3 * hand_calls, (trainer_calls, hand_calls)


def test_checkpoint_keeps_the_trainers_adam(tmp_path):
    model = VLAE((12,), (2,), width=0.05)
    trainer = Trainer(model, torch.rand(64, 12), batch_size=16)
    trainer.step()
    state = trainer.state_dict()
    for group in state["optim"]["param_groups"]:  # as saved by an older, unfused trainer
        group["fused"] = None
    again = Trainer(VLAE((12,), (2,), width=0.05), torch.rand(64, 12), batch_size=16)
    again.load_state_dict(state)
    assert all(group["fused"] for group in again.optim.param_groups)
    again.step()


# ------------------------------------------------------------------ the compiled step
def _compiled_trainer(model, data, **kwargs):
    """A trainer with the compiled step, compiled by ``aot_eager`` (no C++ code generation, so
    the test is quick; its random draws are the eager step's)."""
    trainer = Trainer(model, data, compile=True, **kwargs)
    trainer.compiled.compile_options["backend"] = "aot_eager"
    return trainer


@pytest.mark.parametrize("elbo", ["trace", "meanfield"])
def test_compiled_step_trains_like_the_eager_step_and_compiles_once(elbo):
    from pyro_vlae.train import LayerFadeIn
    from pyro_vlae.train.compiled import CompiledStep

    data = torch.rand(64, 12)
    base = VLAE((12,), (2, 2), width=0.05)
    import copy

    # β and the layer fade-in change during the first steps: both are inputs, not constants
    options = {"batch_size": 16, "elbo": elbo, "warmup": KLWarmup(5), "fade_in": LayerFadeIn(4)}
    eager = Trainer(copy.deepcopy(base), data, compile=False, **options)
    compiled = _compiled_trainer(copy.deepcopy(base), data, **options)
    assert isinstance(compiled.compiled, CompiledStep) and eager.compiled is None
    losses = {}
    for name, trainer in (("eager", eager), ("compiled", compiled)):
        pyro.set_rng_seed(1)
        losses[name] = torch.stack([trainer.train_step() for _ in range(10)])  # β changes, 2.5 epochs
    torch.testing.assert_close(losses["compiled"], losses["eager"], rtol=1e-5, atol=1e-6)
    for (k, a), b in zip(eager.model.state_dict().items(), compiled.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)  # parameters and batch-norm statistics
    assert compiled.compiled.compiles == 1
    compiled.batch_size = 8  # a new shape is traced and compiled once more
    compiled.train_step()
    compiled.train_step()
    assert compiled.compiled.compiles == 2


def test_compiled_step_resumes_exactly():
    import copy

    data = torch.rand(64, 12)
    pyro.set_rng_seed(2)
    full = _compiled_trainer(VLAE((12,), (2, 2), width=0.05), data, batch_size=16)
    init = copy.deepcopy(full.state_dict())  # state_dict() holds the live tensors
    whole = [full.train_step() for _ in range(6)]
    part = _compiled_trainer(VLAE((12,), (2, 2), width=0.05), data, batch_size=16)
    part.load_state_dict(init)
    first = [part.train_step() for _ in range(3)]
    saved = copy.deepcopy(part.state_dict())  # a checkpoint: before building the next model draws
    resumed = _compiled_trainer(VLAE((12,), (2, 2), width=0.05), data, batch_size=16)
    resumed.load_state_dict(saved)
    rest = [resumed.train_step() for _ in range(3)]
    assert torch.equal(torch.stack(whole), torch.stack(first + rest))
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_compile_refusals():
    from pyro_vlae.errors import ConfigError
    from pyro_vlae.train import DistributedTrainer

    with pytest.raises(ConfigError, match="do not combine"):
        Trainer(VLAE((12,), (2,), width=0.05), torch.rand(64, 12), batch_size=16, jit=True, compile=True)
    assert DistributedTrainer.supports_compile is False
    assert Trainer(VLAE((12,), (2,), width=0.05), torch.rand(64, 12), batch_size=16).compiled is None  # CPU default


def test_one_factory_chooses_the_kind_of_step():
    from pyro_vlae.errors import ConfigError
    from pyro_vlae.train.steps import STEP_KINDS, make_step

    data = torch.rand(64, 12)
    kinds = {options: Trainer(VLAE((12,), (2,), width=0.05), data, batch_size=16, **dict(options)).kind
             for options in [(), (("jit", True),), (("compile", True),), (("compile", False),)]}
    assert list(kinds.values()) == ["eager", "jit", "compiled", "eager"]
    assert set(kinds.values()) < set(STEP_KINDS)
    with pytest.raises(ConfigError, match="unknown kind of training step"):
        make_step(Trainer(VLAE((12,), (2,), width=0.05), data, batch_size=16), "fast")


def _refuse_to_compile(monkeypatch):
    """Make every compile fail as it does without a C++ compiler; returns the attempts."""
    from pyro_vlae.train.compiled import CompiledStep

    attempts = []

    def refuse(self, *args):
        attempts.append(1)
        raise RuntimeError("Compiler: cc is not found\nmore lines")

    monkeypatch.setattr(CompiledStep, "_trace", refuse)
    return attempts


def test_a_step_that_cannot_compile_runs_eagerly_and_says_so(monkeypatch):
    import copy
    import warnings

    from pyro_vlae.errors import FallbackWarning

    attempts = _refuse_to_compile(monkeypatch)
    base, data = VLAE((12,), (2, 2), width=0.05), torch.rand(64, 12)
    eager = Trainer(copy.deepcopy(base), data, batch_size=16, compile=False)
    compiled = Trainer(copy.deepcopy(base), data, batch_size=16, compile=True)
    pyro.set_rng_seed(1)
    with pytest.warns(FallbackWarning, match=r"could not be compiled \(RuntimeError: Compiler: cc is not found\)"):
        first = compiled.train_step()
    assert compiled._step.failed == "RuntimeError: Compiler: cc is not found"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second attempt, no second warning
        losses = [first, *(compiled.train_step() for _ in range(2))]
    assert attempts == [1]
    pyro.set_rng_seed(1)
    assert torch.equal(torch.stack(losses), torch.stack([eager.train_step() for _ in range(3)]))


def test_compiled_steps_cache_in_the_users_cache_folder(monkeypatch, tmp_path):
    from pyro_vlae.train.steps import persistent_compile_cache

    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert persistent_compile_cache() == tmp_path / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "own"))  # the user's choice stands
    assert persistent_compile_cache() == tmp_path / "own"


def test_fit_compile_option_reaches_the_trainer(tmp_path, monkeypatch):
    import json

    _refuse_to_compile(monkeypatch)
    small = ["fit", *fit_args(steps=2, z_dims="2"), "--device", "cpu"]
    r = run(*small, "--compile", "--out", str(tmp_path / "compiled"))
    assert r.exit_code == 0, r.output
    assert "warning: the training step could not be compiled (RuntimeError: Compiler: cc is not found)" in r.output
    assert json.loads((tmp_path / "compiled" / "config.json").read_text())["compile"] is True
    r = run(*small, "--no-compile", "--out", str(tmp_path / "eager"))
    assert r.exit_code == 0 and "could not be compiled" not in r.output, r.output
    assert json.loads((tmp_path / "eager" / "config.json").read_text())["compile"] is False
    r = run(*small, "--out", str(tmp_path / "default"))  # the trainer's default: eager here, a CUDA graph on CUDA
    assert r.exit_code == 0 and "could not be compiled" not in r.output, r.output
    assert json.loads((tmp_path / "default" / "config.json").read_text())["compile"] is None
    r = run(*small, "--compile", "--jit", "--out", str(tmp_path / "both"))
    assert r.exit_code != 0 and "do not combine" in r.output
