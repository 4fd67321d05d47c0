"""pyro-vlae's models in the Pyro scripts an expert Pyro user writes from the README alone:
named models side by side, the user's own data plate, autoguides on mini-batches,
enumeration, particles, the param store, Predictive, JIT and β warm-ups."""

import math
import re
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import (
    SVI,
    JitTrace_ELBO,
    Predictive,
    Trace_ELBO,
    TraceEnum_ELBO,
    TraceMeanField_ELBO,
)
from pyro.infer.autoguide import AutoNormal
from pyro.optim import SGD, Adam

import pyro_vlae
from pyro_vlae import load_run
from pyro_vlae.errors import ConfigError
from pyro_vlae.run import fit

X = (1, 8, 8)
MODELS = ["VLAE", "HVAE", "LVAE", "VAE"]


def make(kind="VLAE", **kw):
    return getattr(pyro_vlae, kind)(X, (2, 3), width=0.125, **kw)


def train(model, x, steps=2, **kw):
    """Plain SVI with Pyro's optimiser: what it trains comes from the param statements."""
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-2}), Trace_ELBO())
    for _ in range(steps):
        svi.step(x, **kw)


def changed(model, before):
    return sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


def test_the_documented_api_is_importable_from_the_package():
    from pyro_vlae import (  # noqa: F401
        HVAE,
        LVAE,
        VAE,
        VLAE,
        Bernoulli,
        DiscretizedLogistic,
        DiscretizedLogisticMixture,
        Gaussian,
        Laplace,
        load_run,
    )


# ----------------------------------------------------------------- names, param store
@pytest.mark.parametrize("second", MODELS)
def test_a_second_model_in_the_process_trains_its_own_parameters(second):
    x = torch.rand(8, *X)
    first = make("VLAE")
    train(first, x)
    model = make(second)  # no pyro.clear_param_store() in between
    before = snapshot(model)
    train(model, x)
    assert changed(model, before) == len(before)
    assert model._pyro_name != first._pyro_name


def test_a_name_prefixes_every_parameter_in_the_store():
    x = torch.rand(8, *X)
    a, b = make(name="encoder_a"), make(name="encoder_b")
    train(a, x)
    train(b, x)
    names = list(pyro.get_param_store().keys())
    assert names and all(n.startswith(("encoder_a.", "encoder_b.")) for n in names)
    assert sum(n.startswith("encoder_a.") for n in names) == len(list(a.parameters()))


def test_module_local_params_train_each_model_apart():
    x = torch.rand(8, *X)
    with pyro.settings.context(module_local_params=True):
        a, b = make(), make()
        before_a, before_b = snapshot(a), snapshot(b)
        train(a, x)  # SVI with Pyro's optimiser
        assert changed(a, before_a) == len(before_a) and changed(b, before_b) == 0
        elbo = Trace_ELBO()(b, b.guide)  # Pyro's ELBO module with a torch optimiser
        optim = torch.optim.Adam(elbo.parameters(), lr=1e-2)
        elbo(x).backward()
        optim.step()
        assert changed(b, before_b) == len(before_b)
    assert len(pyro.get_param_store()) == 0


def test_the_param_store_saves_and_restores_a_model(tmp_path):
    x = torch.rand(8, *X)
    model = make(name="mine")
    train(model, x, steps=3)
    pyro.get_param_store().save(tmp_path / "params.pt")
    trained = snapshot(model)
    pyro.clear_param_store()
    fresh = make(name="mine")
    pyro.get_param_store().load(tmp_path / "params.pt")
    train(fresh, x, steps=1)  # the first step reads the stored values, then trains them
    assert changed(fresh, trained) == len(trained)
    restored = make(name="mine")
    pyro.get_param_store().load(tmp_path / "params.pt")
    restored.sync_param_store()
    assert changed(restored, trained) == 0


def test_state_dict_carries_the_buffers_the_param_store_does_not():
    """The documented way to keep a whole model: batch-norm statistics and layer gates too."""
    x = torch.rand(8, *X)
    model = make()
    train(model, x)
    model.layer_gates.fill_(0.5)
    copy = make()
    copy.load_state_dict(model.state_dict())
    for (name, a), b in zip(model.named_buffers(), copy.buffers()):
        assert torch.equal(a, b), name
    stored = set(pyro.get_param_store().keys())
    assert not any("running_mean" in n or "layer_gates" in n for n in stored)


def small_config(**kw):
    base = dict(plugin_options={"num_train": 64, "num_test": 16}, z_dims=(2, 2), width=0.125, steps=2,
                batch_size=16, warmup_steps=1, checkpoint_every=2, log_every=2, seed=1)
    return pyro_vlae.RunConfig(**{**base, **kw})


def test_load_run_leaves_the_param_store_alone(tmp_path):
    out = fit(small_config(), tmp_path / "run", progress=False, echo=lambda _: None)
    pyro.param("my_param", torch.ones(3))
    run = load_run(out)
    assert torch.equal(pyro.param("my_param"), torch.ones(3))
    run.model.reconstruct(torch.rand(4, *run.model.x_shape))
    assert torch.equal(pyro.param("my_param"), torch.ones(3))


# ---------------------------------------------------------------------- the data plate
def test_the_model_joins_the_users_data_plate():
    n, b = 40, 8
    data = torch.rand(n, *X)
    vlae = make()

    def model():
        with pyro.plate("data", n, subsample_size=b) as i:
            vlae.model(data[i])

    def guide():
        with pyro.plate("data", n, subsample_size=b) as i:
            vlae.guide(data[i])

    guide_trace = poutine.trace(guide).get_trace()
    trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace()
    assert trace.nodes["x"]["scale"] == n / b
    indices = guide_trace.nodes["data"]["value"]
    assert torch.equal(trace.nodes["data"]["value"], indices)
    before = snapshot(vlae)
    svi = SVI(model, guide, Adam({"lr": 1e-2}), Trace_ELBO())
    assert math.isfinite(svi.step())
    assert changed(vlae, before) == len(before)


def test_a_plate_of_another_name_at_the_data_dim_is_one_clear_message():
    vlae, x = make(), torch.rand(8, *X)
    with pytest.raises(ConfigError, match=r"dim=-2"):
        with pyro.plate("batch", 8):
            vlae.model(x)
    with pytest.raises(ConfigError, match=r"dim=-2"):
        with pyro.plate("particles", 4):
            vlae.guide(x)
    with pytest.raises(pyro_vlae.errors.DataError, match="holds 8 data points, the batch 5"):
        with pyro.plate("data", 8):
            vlae.model(x[:5])


def test_particle_plates_left_of_the_data_are_independent_copies():
    vlae, x = make().eval(), torch.rand(5, *X)
    with pyro.plate("particles", 3, dim=-2):
        guide = poutine.trace(vlae.guide).get_trace(x)
        model = poutine.trace(poutine.replay(vlae.model, trace=guide)).get_trace(x)
    assert guide.nodes["z1"]["value"].shape == (3, 5, 2)
    assert model.nodes["x"]["fn"].log_prob(x).shape == (3, 5)


def test_autonormal_minibatches_update_the_rows_of_their_batch():
    """AutoNormal over every data point's latents (no encoder): a step on points ``i`` moves
    rows ``i`` of its parameters and no others, with the indices passed as ``subsample``."""
    n, b = 50, 10
    data = torch.rand(n, *X)
    vlae = make()
    guide = AutoNormal(vlae.model, create_plates=lambda x, beta=1.0, **kw: pyro.plate(
        "data", kw["num_data"], subsample=kw["subsample"]))
    svi = SVI(vlae.model, guide, SGD({"lr": 1e-3}), Trace_ELBO())  # no momentum
    i = torch.tensor([3, 7, 11, 19, 23, 29, 31, 37, 41, 43])
    svi.step(data[i], num_data=n, subsample=i)  # the first step creates AutoNormal's parameters
    loc = guide.locs.z1.detach().clone()
    assert loc.shape == (n, 2)
    j = torch.arange(b)
    svi.step(data[j], num_data=n, subsample=j)
    moved = (guide.locs.z1.detach() != loc).any(-1).nonzero().flatten()
    assert moved.tolist() == j.tolist()


def test_autonormal_minibatches_in_the_users_own_plate():
    n, b = 50, 10
    data = torch.rand(n, *X)
    vlae = make()

    def model():
        with pyro.plate("data", n, subsample_size=b) as i:
            vlae.model(data[i])

    guide = AutoNormal(model)
    svi = SVI(model, guide, SGD({"lr": 1e-3}), Trace_ELBO())
    svi.step()
    loc = guide.locs.z1.detach().clone()
    assert loc.shape == (n, 2)
    svi.step()
    moved = (guide.locs.z1.detach() != loc).any(-1).nonzero().flatten()
    assert len(moved) == b


def test_enumeration_around_the_model_gives_the_hand_computed_loss():
    """A discrete label y per data point, enumerated in the user's data plate next to the
    VLAE: the loss is the VLAE's ELBO plus the exact log marginal of the observed w."""
    vlae, x = make().eval(), torch.rand(6, *X)
    w = torch.randn(6)
    prior = torch.tensor([0.3, 0.7])

    def model(x, w):
        with pyro.plate("data", len(x)):
            vlae.model(x)
            y = pyro.sample("y", dist.Categorical(prior), infer={"enumerate": "parallel"})
            pyro.sample("w", dist.Normal(y.float() * 2.0, 1.0), obs=w)

    def guide(x, w):
        with pyro.plate("data", len(x)):
            vlae.guide(x)

    pyro.set_rng_seed(1)
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide, x, w)
    pyro.set_rng_seed(1)
    vlae_loss = Trace_ELBO().loss(vlae.model, vlae.guide, x)
    log_marginal = torch.logsumexp(prior.log()[:, None] + dist.Normal(torch.tensor([[0.0], [2.0]]), 1.0).log_prob(w), 0)
    assert loss == pytest.approx(vlae_loss - float(log_marginal.sum()), rel=1e-5)


@pytest.mark.parametrize("kind", MODELS)
def test_data_with_extra_batch_dimensions_is_accepted(kind):
    model, x = make(kind).eval(), torch.rand(8, *X)
    trace = poutine.trace(model.model).get_trace(x.expand(2, 8, *X))
    assert trace.nodes["x"]["fn"].log_prob(x.expand(2, 8, *X)).shape == (2, 8)
    guide = poutine.trace(model.guide).get_trace(x.expand(2, 8, *X))
    assert guide.nodes["z1"]["value"].shape[:2] == (2, 8)


# ------------------------------------------------------------------ Predictive, return
@pytest.mark.parametrize("kind", MODELS)
def test_predictive_draws_num_samples_of_the_prior(kind):
    model = make(kind).eval()
    samples = Predictive(model.model, num_samples=10)()
    assert samples["x"].shape == (10, 1, *X)
    parallel = Predictive(model.model, num_samples=10, parallel=True)()
    assert parallel["x"].shape == (10, 1, *X)
    with pyro.plate("data", 6):
        assert poutine.trace(model.model).get_trace().nodes["x"]["value"].shape == (6, *X)


def test_model_returns_the_likelihood_at_the_sampled_latents():
    model, x = make().eval(), torch.rand(4, *X)
    trace = poutine.trace(model.model).get_trace(x)
    r = trace.nodes["_RETURN"]["value"]
    assert torch.equal(r.mean, trace.nodes["x"]["fn"].mean)
    assert r.mean.shape == (4, *X) and r.log_prob(x).shape == (4,)


# --------------------------------------------------------------------------- β and JIT
def test_jit_traces_once_through_a_warm_up():
    model, x = make(), torch.rand(8, *X)
    elbo = JitTrace_ELBO(ignore_jit_warnings=True)
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-3}), elbo)
    for step in range(5):
        svi.step(x, torch.tensor(min(1.0, 0.1 + step / 4)), num_data=80)
    assert len(elbo._loss_and_surrogate_loss.compiled) == 1


@pytest.mark.parametrize("beta", [0.0, torch.tensor(0.0)])
def test_beta_zero_is_a_pure_autoencoder(beta):
    model, x = make(), torch.rand(8, *X)
    pyro.set_rng_seed(2)
    loss = Trace_ELBO().loss(model.model, model.guide, x, beta)
    pyro.set_rng_seed(2)
    guide = poutine.trace(model.guide).get_trace(x)
    trace = poutine.trace(poutine.replay(model.model, trace=guide)).get_trace(x)
    assert loss == pytest.approx(-float(trace.nodes["x"]["fn"].log_prob(x).sum()), rel=1e-5)
    train(model, x, steps=1, beta=beta)
    with pytest.raises(ConfigError, match="beta must be >= 0"):
        model.model(x, -0.5)


# --------------------------------------------------------------------------------- misuse
def test_mean_field_elbo_on_the_hvae_is_refused():
    model, x = make("HVAE"), torch.rand(8, *X)
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-3}), TraceMeanField_ELBO())
    with pytest.raises(ConfigError, match="Trace_ELBO"):
        svi.step(x)
    lvae = make("LVAE")
    assert math.isfinite(SVI(lvae.model, lvae.guide, Adam({"lr": 1e-3}), TraceMeanField_ELBO()).step(x))


@pytest.mark.parametrize("kind", MODELS)
def test_batch_norm_in_training_mode_on_one_image_is_refused(kind):
    model, x = make(kind), torch.rand(1, *X)
    with pytest.raises(ConfigError, match=r"model.eval\(\)"):
        Trace_ELBO().loss(model.model, model.guide, x)
    model.eval()
    assert math.isfinite(Trace_ELBO().loss(model.model, model.guide, x))


# ------------------------------------------------------------------------------ README
def test_the_readme_python_section_runs_as_printed(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'pyro.plate("data"' in code and "name=" in code and "clear_param_store" not in code
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
