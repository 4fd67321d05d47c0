"""The VLAE's recipe options: gated ladder combination, two-layer heads, top-down fade-in."""

import json

import pytest
import torch

from pyro_vlae import VLAE, Trainer
from pyro_vlae.config import RunConfig
from pyro_vlae.errors import ConfigError
from pyro_vlae.nets.blocks import GatedAdd
from pyro_vlae.train import LayerFadeIn


@pytest.mark.parametrize("x_shape", [(1, 28, 28), (3, 32, 32), (12,)])
def test_gated_combination_and_mlp_heads_build_and_decode(x_shape):
    model = VLAE(x_shape, (2, 2, 2), width=0.125, combine="gated", heads="mlp")
    assert len(model.gates) == 2 and all(isinstance(g, GatedAdd) for g in model.gates)
    assert all(torch.allclose(g.gate, torch.tensor(0.1)) for g in model.gates)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.ladder[0].modules()) == 2
    x = torch.rand(4, *x_shape)
    loc, scale = model.encode(x)[0]
    assert loc.shape == scale.shape == (4, 2) and (scale > 0).all()
    assert model.decode([torch.randn(4, 2) for _ in range(3)]).shape[0] == 4


def test_gate_scales_the_ladder_path():
    model = VLAE((12,), (2, 2), combine="gated").eval()
    zs = [torch.randn(5, 2), torch.randn(5, 2)]
    other = [torch.randn(5, 2), zs[1]]
    assert not torch.allclose(model.decode(zs), model.decode(other))
    with torch.no_grad():
        model.gates[0].gate.zero_()
    assert torch.allclose(model.decode(zs), model.decode(other))  # z1 no longer reaches x


@pytest.mark.parametrize("combine", ["concat", "gated"])
def test_closed_layer_gate_cuts_a_layer_off(combine):
    model = VLAE((12,), (2, 2, 2), combine=combine).eval()
    zs = [torch.randn(5, 2) for _ in range(3)]
    model.layer_gates[0] = 0.0
    assert torch.allclose(model.decode(zs), model.decode([torch.randn(5, 2), *zs[1:]]))
    assert not torch.allclose(model.decode(zs), model.decode([zs[0], torch.randn(5, 2), zs[2]]))


def test_unknown_options_are_refused():
    with pytest.raises(ConfigError, match="ladder combination"):
        VLAE((12,), (2, 2), combine="sum")
    with pytest.raises(ConfigError, match="ladder heads"):
        VLAE((12,), (2, 2), heads="deep")


def test_fade_in_schedule_opens_layers_from_the_top_down():
    fade = LayerFadeIn(100)
    assert fade.end(3) == 200
    assert fade(0, 3).tolist() == [0.0, 0.0, 1.0]
    assert fade(75, 3).tolist() == [0.0, 0.5, 1.0]
    assert fade(100, 3).tolist() == [0.0, 1.0, 1.0]
    assert fade(175, 3).tolist() == [0.5, 1.0, 1.0]
    assert fade(200, 3).tolist() == fade(10_000, 3).tolist() == [1.0, 1.0, 1.0]
    assert LayerFadeIn(0)(0, 3).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        LayerFadeIn(-1)


def test_trainer_applies_the_fade_in_and_leaves_layers_open():
    torch.manual_seed(0)
    model = VLAE((12,), (2, 2, 2), width=0.05)
    trainer = Trainer(model, torch.rand(64, 12), batch_size=16, fade_in=LayerFadeIn(4))
    trainer.step()
    assert model.layer_gates.tolist() == [0.0, 0.0, 1.0]
    for _ in range(9):
        trainer.step()
    assert model.layer_gates.tolist() == [1.0, 1.0, 1.0]
    from pyro_vlae.models import HVAE

    with pytest.raises(ConfigError, match="fade"):
        Trainer(HVAE((12,), (2, 2), width=0.05), torch.rand(64, 12), batch_size=16, fade_in=LayerFadeIn(4))


def test_config_resolves_vlae_options_and_refuses_them_elsewhere():
    c = RunConfig(model="vlae").resolve({"combine": "gated", "fade_in": 300}, "gaussian", 1000)
    assert (c.combine, c.heads, c.fade_in) == ("gated", "linear", 300)
    c = RunConfig(model="hvae").resolve({"combine": "gated", "fade_in": 300}, "gaussian", 1000)
    assert (c.combine, c.heads, c.fade_in) == ("concat", "linear", 0)  # a VLAE recommendation is not applied
    with pytest.raises(ConfigError, match="--fade-in applies to the VLAE only"):
        RunConfig(model="lvae", fade_in=100).resolve({}, "gaussian", 1000)
    with pytest.raises(ConfigError, match="--fade-in"):
        RunConfig(fade_in=-1).validate()


def test_fit_with_the_recipe_options_and_resume(tmp_path):
    from pyro_vlae.run import fit
    from pyro_vlae.run_folder import load_run

    options = dict(plugin_options={"num_train": 256, "num_test": 64}, z_dims=(2, 2, 2), width=0.125,
                   batch_size=16, warmup_steps=2, combine="gated", heads="mlp", fade_in=3, log_every=4,
                   checkpoint_every=4, device="cpu")
    fit(RunConfig(**options, steps=10), tmp_path / "a", progress=False, echo=lambda _: None)
    fit(RunConfig(**options, steps=4), tmp_path / "b", progress=False, echo=lambda _: None)
    fit(RunConfig(**options, steps=10), tmp_path / "b", resume=True, progress=False, echo=lambda _: None,
        overrides={"steps": 10})
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (saved["combine"], saved["heads"], saved["fade_in"]) == ("gated", "mlp", 3)
    a, b = load_run(tmp_path / "a").model, load_run(tmp_path / "b").model
    assert a.combine == "gated" and a.layer_gates.tolist() == [1.0, 1.0, 1.0]
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_kl_weights_scale_each_layers_kl_term():
    from pyro import poutine

    model = VLAE((12,), (2, 2), kl_weights=(4.0, 1.0))
    x = torch.rand(3, 12)
    guide = poutine.trace(model.guide).get_trace(x, beta=0.5)
    trace = poutine.trace(poutine.replay(model.model, trace=guide)).get_trace(x, beta=0.5)
    for tr in (guide, trace):
        assert tr.nodes["z1"]["scale"] == pytest.approx(2.0) and tr.nodes["z2"]["scale"] == pytest.approx(0.5)
    assert trace.nodes["x"]["scale"] == 1.0
    with pytest.raises(ConfigError, match="kl_weights"):
        VLAE((12,), (2, 2), kl_weights=(1.0,))
    with pytest.raises(ConfigError, match="--kl-weights"):
        RunConfig(kl_weights=(1.0, 0.0)).resolve({}, "gaussian", 100)
    c = RunConfig(kl_weights=(3.0, 1.0, 1.0)).resolve({}, "gaussian", 100)
    assert RunConfig.from_dict(json.loads(json.dumps(c.to_dict()))).kl_weights == (3.0, 1.0, 1.0)


def test_z_norm_none_drops_batch_norm_where_z_is_read_and_decodes_by_scale():
    model = VLAE((3, 32, 32), (2, 2, 2), width=0.125, z_norm="none")
    readers = [model.top[0], *[v[0] for v in model.noise]]
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for r in readers for m in r.modules())
    assert all(r[0].bias is not None for r in readers)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.top[1].modules())  # the rest is unchanged
    model.train()  # batch statistics: with batch norm, scaling z changes next to nothing; without it, the images

    def change(m):
        with torch.no_grad():
            return float((m.decode(zs) - m.decode([3 * z for z in zs])).abs().mean())

    torch.manual_seed(0)
    zs = [torch.randn(64, 2) for _ in range(3)]
    authors = VLAE((3, 32, 32), (2, 2, 2), width=0.125).train()
    assert change(authors) < 0.01 * change(model)
    with pytest.raises(ConfigError, match="z_norm"):
        VLAE((12,), (2, 2), z_norm="layer")


def test_z_norm_flows_from_the_command_line_to_the_saved_model(tmp_path):
    from pyro_vlae.run_folder import load_run
    from tests.conftest import fit_args, run

    out = tmp_path / "run"
    r = run("fit", *fit_args(2, z_dims="2,2,2"), "--z-norm", "none", "--out", out)
    assert r.exit_code == 0, r.output
    assert json.loads((out / "config.json").read_text())["z_norm"] == "none"
    assert load_run(out).model.z_norm == "none"
    c = RunConfig(model="hvae").resolve({"z_norm": "none"}, "gaussian", 1000)
    assert c.z_norm == "batch"  # a VLAE recommendation is not applied to another model


def test_a_fractional_fade_in_follows_the_run_and_resumes_unchanged():
    assert LayerFadeIn.stage_for(0.5, 2000, 3) == 500  # every layer fully on after half the run
    assert LayerFadeIn.stage_for(0.3, 20000, 3) == 3000 and LayerFadeIn.stage_for(0.5, 200, 3) == 50
    assert LayerFadeIn.stage_for(300, 200, 3) == 300  # a whole number is steps per layer, whatever the run
    assert LayerFadeIn.stage_for(0.5, 1, 3) == 1 and LayerFadeIn.stage_for(0.5, 2000, 1) == 0
    with pytest.raises(ValueError, match="fraction"):
        LayerFadeIn.stage_for(1.5, 2000, 3)
    c = RunConfig(model="vlae", z_dims=(3, 3, 3), steps=4000).resolve({"fade_in": 0.5}, "gaussian", 1000)
    assert c.fade_in == 1000 and RunConfig.from_dict(c.to_dict()).resolve({}, "gaussian", 1000).fade_in == 1000
    c = RunConfig(model="vlae", z_dims=(2, 2, 2, 2), fade_in=0.6, epochs=2, batch_size=10).resolve({}, "gaussian", 500)
    assert (c.steps, c.fade_in) == (100, 20)  # the steps --epochs gives, in three stages
    with pytest.raises(ConfigError, match="fraction of the run"):
        RunConfig(fade_in=1.5).validate()
    assert LayerFadeIn(4).never_fully_on(6, 3) == [0] and LayerFadeIn(4).never_fully_on(9, 3) == []
    assert LayerFadeIn(4).state(6, 3) == {"stage_steps": 4, "steps": 6, "gates": [0.0, 1.0, 1.0],
                                         "fully_on_at": [8, 4, 0]}


def test_fit_warns_of_a_layer_never_fully_on_and_evaluate_says_why_its_kl_is_zero(tmp_path):
    from click.testing import CliRunner

    from pyro_vlae.cli import main

    small = ["-P", "num_train=64", "-P", "num_test=16", "--z-dims", "2,2,2", "--width", "0.125", "--steps", "6",
             "--batch-size", "16", "--log-every", "3", "--no-progress"]
    runner = CliRunner()
    r = runner.invoke(main, ["fit", *small, "--fade-in", "4", "--out", str(tmp_path / "late")])
    assert r.exit_code == 0, r.output
    warning = next(line for line in r.output.splitlines() if line.startswith("warning:"))
    assert "the fade-in (one layer every 4 steps) leaves z1 (fully on from step 8) not fully on" in warning
    assert "z2" not in warning
    r = runner.invoke(main, ["fit", *small, "--fade-in", "0.5", "--out", str(tmp_path / "fits")])
    assert r.exit_code == 0 and "warning" not in r.output, r.output
    assert json.loads((tmp_path / "fits" / "config.json").read_text())["fade_in"] == 2  # 0.5 of 6 steps, 2 stages
    r = runner.invoke(main, ["fit", *small, "--fade-in", "2.5", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "neither a fraction of the run in (0, 1) nor a whole number" in r.output

    quick = ["--iwae-samples", "2", "--iwae-points", "4", "--no-intervention", "--fidelity-samples", "0",
             "--no-progress"]
    r = runner.invoke(main, ["evaluate", str(tmp_path / "late"), *quick])
    assert r.exit_code == 0, r.output
    assert "note: z1 was never switched on: the fade-in opens it fully at step 8, the run stopped at 6" in r.output
    assert "note: z2" not in r.output
    fade = json.loads((tmp_path / "late" / "evaluation.json").read_text())["fade_in"]
    assert fade == {"stage_steps": 4, "steps": 6, "gates": [0.0, 1.0, 1.0], "fully_on_at": [8, 4, 0]}
    r = runner.invoke(main, ["evaluate", str(tmp_path / "fits"), *quick])
    assert r.exit_code == 0 and "note:" not in r.output, r.output


def test_each_model_declares_its_own_options_and_the_run_passes_them_on():
    from pyro_vlae.models import MODELS, model_options

    assert model_options(VLAE) == {"combine": "concat", "heads": "linear", "kl_weights": None, "z_norm": "batch"}
    assert all(model_options(cls) == {} for name, cls in MODELS.items() if name != "vlae")
    assert RunConfig(model="vlae", combine="gated", kl_weights=(2.0, 1.0)).model_options() == {
        "combine": "gated", "kl_weights": (2.0, 1.0)}
    assert RunConfig(model="hvae").model_options() == {}
    with pytest.raises(ConfigError, match=r"kl_weights needs one positive weight per layer \(3\)"):
        RunConfig(model="vlae", kl_weights=(1.0, 0.0, 1.0)).resolve({}, "gaussian", 1000)
