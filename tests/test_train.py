
import pyro
import pytest
import torch

from pyro_vlae import VLAE, KLWarmup, RunConfig, Trainer
from pyro_vlae.errors import CheckpointError, ConfigError
from pyro_vlae.run import fit
from pyro_vlae.run_folder import load_checkpoint, load_run, save_checkpoint


def test_warmup_schedule():
    w = KLWarmup(steps=10, start=0.01, end=1.0)
    assert w(0) == pytest.approx(0.01) and w(5) == pytest.approx(0.505) and w(10) == w(99) == 1.0
    assert KLWarmup(0, 0.5, 0.5)(3) == 0.5  # constant β: a β-VAE
    with pytest.raises(ValueError):
        KLWarmup(10, 0.0, 1.0)


def test_elbo_improves_on_tiny_data(tiny_shapes):
    model = VLAE((3, 32, 32), (2, 2), width=0.125)
    trainer = Trainer(model, tiny_shapes.x, batch_size=32, lr=2e-3, warmup=KLWarmup(20))
    losses = [trainer.step() for _ in range(60)]
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10


def test_warmup_scale_reaches_the_sites(tiny_shapes):
    model = VLAE((3, 32, 32), (2, 2), width=0.125)
    trainer = Trainer(model, tiny_shapes.x, batch_size=32, warmup=KLWarmup(100, 0.01, 1.0))
    seen = {}

    class Spy(pyro.poutine.messenger.Messenger):
        def _postprocess_message(self, msg):
            if msg["type"] == "sample":
                seen[msg["name"]] = float(msg["scale"])

    with Spy():
        trainer.step()
    n_over_b = 128 / 32
    assert seen["z1"] == pytest.approx(0.01 * n_over_b)
    assert seen["z2"] == pytest.approx(0.01 * n_over_b)
    assert seen["x"] == pytest.approx(n_over_b)


def test_meanfield_elbo_option(tiny_shapes):
    model = VLAE((3, 32, 32), (2,), width=0.125)
    assert Trainer(model, tiny_shapes.x, batch_size=16, elbo="meanfield").step() > 0
    with pytest.raises(ConfigError, match="ELBO"):
        Trainer(model, tiny_shapes.x, elbo="nonsense")


def small_config(**kw):
    base = dict(
        plugin_options={"num_train": 96, "num_test": 32}, z_dims=(2, 2), width=0.125, steps=12,
        batch_size=16, warmup_steps=5, checkpoint_every=4, log_every=4, seed=7,
    )
    base.update(kw)
    return RunConfig(**base)


def quiet(_):
    pass


def steps_fade_in(**kw):
    """:func:`small_config` with a fade-in counted in steps: one given as a fraction of the run
    (the data set's default) is fitted to the length the run starts with, so a run extended
    with ``--resume --steps`` keeps the schedule it started with."""
    return small_config(fade_in=3, **kw)


def test_fit_writes_run_folder_and_resumes_exactly(tmp_path):
    full = fit(steps_fade_in(), tmp_path / "full", progress=False, echo=quiet)
    for name in ["checkpoint.pt", "config.json", "metrics.csv", "loss.png", "samples.png",
                 "reconstructions.png", "layer1.png", "layer2.png", "layers.png", "summary.json"]:
        assert (full / name).exists(), name
    # the same run, stopped at step 8 and resumed to 12
    fit(steps_fade_in(steps=8), tmp_path / "part", progress=False, echo=quiet)
    fit(steps_fade_in(), tmp_path / "part", resume=True, progress=False, echo=quiet, overrides={"steps": 12})
    a = load_checkpoint(full)["trainer"]["model"]
    b = load_checkpoint(tmp_path / "part")["trainer"]["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # bit-for-bit repeatable from the seed
    fit(steps_fade_in(), tmp_path / "again", progress=False, echo=quiet)
    c = load_checkpoint(tmp_path / "again")["trainer"]["model"]
    assert all(torch.equal(a[k], c[k]) for k in a)
    run = load_run(full)
    assert run.step == 12 and run.model.generate(3).shape == (3, 3, 32, 32)


def test_fit_refuses_to_overwrite_and_resume_conflicts(tmp_path):
    out = fit(small_config(steps=4), tmp_path / "r", progress=False, echo=quiet)
    before = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a run"):
        fit(small_config(steps=4), out, progress=False, echo=quiet)
    with pytest.raises(ConfigError, match="lr"):
        fit(small_config(), out, resume=True, progress=False, echo=quiet, overrides={"lr": 0.5})
    assert (out / "checkpoint.pt").read_bytes() == before
    with pytest.raises(CheckpointError, match="no checkpoint"):
        fit(small_config(), tmp_path / "none", resume=True, progress=False, echo=quiet)


def test_nan_stops_training_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "nan"
    calls = {"n": 0}
    original = Trainer.train_step

    def train_step(self):
        calls["n"] += 1
        loss = original(self)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(Trainer, "train_step", train_step)
    from pyro_vlae.errors import TrainingDiverged

    # the NaN of step 6 is seen at the next log/checkpoint step, before anything is saved
    with pytest.raises(TrainingDiverged, match="by step 8; the checkpoint of step 4 is kept"):
        fit(small_config(), out, progress=False, echo=quiet)
    assert load_checkpoint(out)["trainer"]["step"] == 4


def test_corrupt_and_foreign_checkpoints(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    torch.save({"hello": 1}, bad)
    with pytest.raises(CheckpointError, match="not a pyro-vlae checkpoint"):
        load_checkpoint(bad)
    save_checkpoint(bad, {"x": torch.ones(2)})
    assert torch.equal(load_checkpoint(tmp_path)["x"], torch.ones(2))
    assert not list(tmp_path.glob(".checkpoint*.tmp"))


def test_run_folder_rebuilds_its_model_without_the_data_set(tmp_path, monkeypatch):
    import json

    from pyro_vlae import run_folder

    out = fit(small_config(steps=4), tmp_path / "r", progress=False, echo=quiet)
    saved = json.loads((out / "config.json").read_text())
    assert saved["likelihood"] == "gaussian" and saved["value_range"] == [0.0, 1.0]

    def no_data_set(config):
        raise AssertionError("the data set was opened")

    with monkeypatch.context() as m:
        m.setattr(run_folder, "open_dataset", no_data_set)
        run = load_run(out)
        assert run.model.likelihood.value_range == (0.0, 1.0) and run.model.generate(2).shape == (2, 3, 32, 32)


def test_progress_off_a_terminal_is_one_line_per_log_interval(tmp_path, capsys):
    lines = []
    fit(small_config(steps=8), tmp_path / "r", progress=True, echo=lines.append)
    logged = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in logged] == ["4/8", "8/8"]
    assert "elbo" in logged[0] and "steps/s" in logged[0]
    assert "\r" not in capsys.readouterr().err
