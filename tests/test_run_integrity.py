"""What a run folder promises: logging never changes the model, metrics.csv never loses a row,
and the configuration finds its data again from anywhere."""

import csv
import errno
import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
import torch
from conftest import run as cli

from pyro_vlae import RunConfig
from pyro_vlae.errors import CheckpointError, ConfigError, DataError, StorageError, TrainingDiverged
from pyro_vlae.metrics_log import MetricsLog
from pyro_vlae.run import fit
from pyro_vlae.run_folder import (
    CHECKPOINT,
    EVALUATION,
    METRICS,
    load_checkpoint,
    load_run,
    save_checkpoint,
    write_json,
)


def small_config(**kw):
    base = dict(
        plugin_options={"num_train": 64, "num_test": 16}, z_dims=(2, 2), width=0.125, steps=10,
        batch_size=16, warmup_steps=4, checkpoint_every=5, log_every=2, seed=3,
    )
    base.update(kw)
    return RunConfig(**base)


def quiet(_):
    pass


def model_state(folder):
    return load_checkpoint(folder)["trainer"]["model"]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_logging_does_not_change_the_model(tmp_path):
    """Runs that differ only in --log-every end bit-identical, also when resumed with another.
    The fade-in is given in steps: one given as a fraction is fitted to the length a run starts
    with, which the resumed run extends."""
    fit(small_config(fade_in=3, log_every=2), tmp_path / "often", progress=False, echo=quiet)
    fit(small_config(fade_in=3, log_every=7), tmp_path / "rarely", progress=False, echo=quiet)
    assert same(model_state(tmp_path / "often"), model_state(tmp_path / "rarely"))
    fit(small_config(fade_in=3, steps=5, log_every=3), tmp_path / "resumed", progress=False, echo=quiet)
    fit(small_config(fade_in=3), tmp_path / "resumed", resume=True, progress=False, echo=quiet,
        overrides={"steps": 10, "log_every": 4})
    assert same(model_state(tmp_path / "often"), model_state(tmp_path / "resumed"))
    with open(tmp_path / "resumed" / METRICS) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [3, 5, 8, 10]


FIELDS = ["step", "loss", "seconds"]


def write_rows(path, steps, tail=""):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows({"step": s, "loss": s / 10, "seconds": 1} for s in steps)
        f.write(tail)


def test_metrics_resume_drops_only_rows_past_the_checkpoint_in_place(tmp_path):
    path = tmp_path / METRICS
    write_rows(path, [2, 4, 6, 8], tail="10,1.0")  # a row half-written by a kill
    before = path.read_bytes()
    inode = os.stat(path).st_ino
    log = MetricsLog(path, FIELDS, step=5)
    kept = before[: before.index(b"6,0.6")]
    assert path.read_bytes() == kept and os.stat(path).st_ino == inode  # cut in place, not rewritten
    log.write({"step": 6, "loss": 9, "seconds": 2})
    log.sync()
    assert path.read_bytes() == kept + b"6,9,2\r\n"  # written and flushed at once
    log.close()
    MetricsLog(path, FIELDS, step=6).close()  # nothing past the step: the file is not touched
    assert path.read_bytes() == kept + b"6,9,2\r\n"


def test_metrics_of_a_new_run_and_of_another_run(tmp_path):
    path = tmp_path / METRICS
    write_rows(path, [2, 4])  # left by a run killed before its first checkpoint
    MetricsLog(path, FIELDS, step=0).close()
    assert path.read_bytes() == b"step,loss,seconds\r\n"
    write_rows(path, [2, 4])
    with pytest.raises(CheckpointError, match="columns"):
        MetricsLog(path, ["step", "elbo", "seconds"], step=4)
    assert path.read_bytes().count(b"\n") == 3  # left as it was


def test_config_stores_an_absolute_data_dir_and_summary_names_the_files(tmp_path, monkeypatch):
    from tests.test_datasets import write_mnist

    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path / "cache"))
    write_mnist(tmp_path / "data" / "mnist", n_train=8, n_test=4)
    monkeypatch.chdir(tmp_path / "data")
    config = RunConfig(plugin="mnist", data_dir="mnist", plugin_options={"download": False}, z_dims=(2, 2),
                       width=0.125, steps=2, batch_size=4, log_every=2)
    out = fit(config, tmp_path / "run", progress=False, echo=quiet)
    saved = json.loads((out / "config.json").read_text())
    assert saved["data_dir"] == str(tmp_path / "data" / "mnist")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["files"] == sorted(
        str(tmp_path / "data" / "mnist" / f"{n}.gz")
        for n in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                  "train-labels-idx1-ubyte"]
    )
    monkeypatch.chdir(tmp_path)  # another folder: the run still finds its data
    assert load_run(out).plugin.load("test").x.shape == (4, 1, 28, 28)
    (tmp_path / "data" / "mnist").rename(tmp_path / "data" / "moved")
    with pytest.raises(DataError, match="trained on the data in .*mnist, which no longer exists"):
        load_run(out).plugin.load("test")


def test_resume_with_a_config_file_applies_resumable_options_and_refuses_others(tmp_path):
    out = tmp_path / "run"
    fit(small_config(steps=4), out, progress=False, echo=quiet)
    more, other = tmp_path / "more.toml", tmp_path / "other.toml"
    more.write_text("steps = 6\n")
    other.write_text('steps = 6\nmodel = "hvae"\nz_dims = [3, 3]\n')
    r = cli("fit", "--resume", "--out", str(out), "--config", str(other), "--no-progress")
    assert r.exit_code == 1 and "model was given as 'hvae' (saved: 'vlae')" in r.output, r.output
    assert load_checkpoint(out)["trainer"]["step"] == 4
    r = cli("fit", "--resume", "--out", str(out), "--config", str(more), "--no-progress")
    assert r.exit_code == 0, r.output
    assert load_checkpoint(out)["trainer"]["step"] == 6
    r = cli("fit", "--resume", "--out", str(out), "--config", str(out), "--no-progress")
    assert r.exit_code == 0, r.output  # the run's own config.json: nothing differs


def test_resume_never_cuts_a_run_back(tmp_path):
    out = tmp_path / "run"
    fit(small_config(steps=6), out, progress=False, echo=quiet)
    with pytest.raises(ConfigError, match="has done 6 already"):
        fit(small_config(), out, resume=True, progress=False, echo=quiet, overrides={"steps": 4})
    assert load_checkpoint(out)["trainer"]["step"] == 6


def test_a_new_run_never_writes_over_files_pyro_vlae_did_not_write(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text("my own\n")
    with pytest.raises(ConfigError, match="already holds files that pyro-vlae did not write"):
        fit(small_config(steps=2), out, progress=False, echo=quiet)
    assert [p.name for p in out.iterdir()] == ["config.json"] and (out / "config.json").read_text() == "my own\n"


def test_an_infinite_update_is_never_saved(tmp_path):
    with pytest.raises(TrainingDiverged, match="parameters became NaN or infinite in step 1; nothing was saved"):
        fit(small_config(lr=1e39, checkpoint_every=1, log_every=1), tmp_path / "run", progress=False, echo=quiet)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_an_exploding_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="the loss exploded") as caught:
        fit(small_config(lr=10.0, checkpoint_every=1, log_every=10), out, progress=False, echo=quiet)
    kept = int(re.search(r"the checkpoint of step (\d+) is kept", str(caught.value)).group(1))
    ckpt = load_checkpoint(out)
    assert ckpt["trainer"]["step"] == kept
    assert all(torch.isfinite(v).all() for v in ckpt["trainer"]["model"].values() if v.is_floating_point())
    assert torch.isfinite(load_run(out).model.generate(4)).all()  # the kept model still samples


# ------------------------------------------------------------- files, disks and stale results
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 4-step run folder; tests work on copies (:func:`copy_of`)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    fit(small_config(steps=4, log_every=2, checkpoint_every=2), out, progress=False, echo=quiet)
    return out


def copy_of(run, tmp_path):
    return Path(shutil.copytree(run, tmp_path / run.name))


def fake_evaluation(run, step):
    layer = {"kl": 1.0, "kl_share": 0.5, "active_units": 1, "units": 2, "pca_explained_variance": [0.6, 0.4]}
    evaluation = {"model": "vlae", "seed": 3, "step": step, "num_points": 16, "elbo": -1.0, "recon": -0.5,
                  "iwae": {"samples": 2, "value": -0.5, "num_points": 16, "elbo_same_draws": -1.0},
                  "layers": {"z1": layer, "z2": layer}}
    (run / EVALUATION).write_text(json.dumps(evaluation))


def test_a_full_disk_keeps_the_old_file_and_names_the_path_and_the_fix(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text('{"old": 1}\n')
    fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageError, match=f"cannot write {path}: No space left") as caught:
        write_json(path, {"new": 2})
    assert "free space on the disk of" in str(caught.value)
    with pytest.raises(StorageError, match="No space left"):
        save_checkpoint(tmp_path / CHECKPOINT, {"x": torch.ones(2)})
    monkeypatch.setattr(os, "fsync", fsync)
    assert path.read_text() == '{"old": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temporary file left


def test_a_read_only_run_folder_is_one_message_before_any_work(trained, tmp_path, monkeypatch):
    import tempfile

    run = copy_of(trained, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for command in (["sample"], ["traverse"], ["gibbs"], ["report"], ["evaluate", "--no-progress"],
                    ["fit", "--resume", "--steps", "6", "--no-progress", "--out"]):
        r = cli(*command, run)
        assert r.exit_code == 1, (command, r.output)
        assert f"cannot write {run}: Read-only file system" in r.output and f"make {run} writable" in r.output
        assert r.exception is None or isinstance(r.exception, SystemExit)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_outputs_never_replace_run_files_or_each_other(trained, tmp_path):
    run = copy_of(trained, tmp_path)
    fake_evaluation(run, 4)
    checkpoint, evaluation = (run / CHECKPOINT).read_bytes(), (run / EVALUATION).read_bytes()
    r = cli("encode", run, "--out", run / "checkpoint", "--no-progress")
    assert r.exit_code == 1 and "is a file of the run folder" in r.output, r.output
    r = cli("compare", run, "--out", run / "evaluation")
    assert r.exit_code == 1 and "is a file of the run folder" in r.output, r.output
    assert (run / CHECKPOINT).read_bytes() == checkpoint and (run / EVALUATION).read_bytes() == evaluation
    for name in ("lr0.1", "lr0.2"):
        assert cli("compare", run, "--out", tmp_path / "cmp" / name).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == [
        f"lr0.{i}.{s}" for i in (1, 2) for s in ("csv", "json", "md")
    ]


def test_report_and_compare_say_when_the_evaluation_is_older_than_the_checkpoint(trained, tmp_path):
    run = copy_of(trained, tmp_path)
    fake_evaluation(run, 2)
    note = f"the evaluation of {run} is of step 2, but its checkpoint is of step 4"
    r = cli("report", run)
    assert r.exit_code == 0 and f"warning: {note}" in r.output, r.output
    assert "Out of date:" in (run / "report.html").read_text()
    r = cli("compare", run, "--out", tmp_path / "cmp")
    assert r.exit_code == 0 and f"Out of date: {note}" in r.output, r.output
    fake_evaluation(run, 4)
    r = cli("report", run)
    assert r.exit_code == 0 and "warning" not in r.output and "Out of date" not in (run / "report.html").read_text()


@pytest.mark.parametrize("content", ["{}", "null", "[]", "garbage"])
def test_report_and_compare_refuse_a_broken_evaluation_in_one_message(trained, tmp_path, content):
    run = copy_of(trained, tmp_path)
    (run / EVALUATION).write_text(content)
    for command in (["report", run], ["compare", run, "--out", tmp_path / "cmp"]):
        r = cli(*command)
        assert r.exit_code == 1 and f"{run / EVALUATION} is" in r.output and "Traceback" not in r.output, r.output


def test_resume_counts_all_training_time_removes_leftovers_and_writes_files_alike(trained, tmp_path):
    run = copy_of(trained, tmp_path)
    first = load_checkpoint(run)["train_seconds"]
    leftovers = [run / ".checkpoint.pt-x1.tmp", run / ".checkpoint-x2.tmp"]  # a kill in a checkpoint write
    for p in leftovers:
        p.write_bytes(b"partial")
    fit(small_config(), run, resume=True, progress=False, echo=quiet, overrides={"steps": 6})
    assert not any(p.exists() for p in leftovers)
    assert load_checkpoint(run)["train_seconds"] > first
    assert json.loads((run / "summary.json").read_text())["train_seconds"] == round(
        load_checkpoint(run)["train_seconds"], 2)
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes  # the checkpoint as every other file


class DyingItems(torch.utils.data.Dataset):
    """Items whose first kills the process reading it, as the out-of-memory killer would."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.zeros(1, 2, 2)


def test_a_killed_loader_worker_is_one_data_error():
    from pyro_vlae.data import StreamData

    with pytest.raises(DataError, match=r"a data-loading worker process failed \(DataLoader worker"):
        list(StreamData(DyingItems(), (1, 2, 2), num_workers=1).batches(2))


@pytest.mark.parametrize("option", [("--kl-weights", "1,nan"), ("--seed", "-1"), ("--seed", "99999999999999999999"),
                                    ("--epochs", "inf"), ("--width", "inf")])
def test_impossible_numbers_are_one_message(tmp_path, option):
    r = cli("fit", "-P", "num_train=32", "-P", "num_test=8", "--z-dims", "2,2", "--batch-size", "16", "--steps", "2",
            *option, "--out", tmp_path / "run", "--no-progress")
    assert r.exit_code in (1, 2) and isinstance(r.exception, SystemExit) and option[0] in r.output, r.output


@pytest.mark.parametrize("damage", ["config", "trainer.optim", "trainer.rng_cpu", "step"])
def test_resume_from_a_damaged_checkpoint_is_one_message(trained, tmp_path, damage):
    run = copy_of(trained, tmp_path)
    ckpt = load_checkpoint(run)
    if damage == "step":
        ckpt["trainer"]["step"] = "abc"
    elif damage.startswith("trainer."):
        del ckpt["trainer"][damage.split(".")[1]]
    else:
        del ckpt[damage]
    save_checkpoint(run / CHECKPOINT, ckpt)
    r = cli("fit", "--resume", "--out", run, "--steps", "6", "--no-progress")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert f"the checkpoint in {run} lacks" in r.output


def test_resume_finds_moved_data_and_takes_a_relative_data_dir(tmp_path, monkeypatch):
    from tests.test_datasets import write_mnist

    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path / "cache"))
    write_mnist(tmp_path / "data" / "mnist", n_train=8, n_test=4)
    monkeypatch.chdir(tmp_path / "data")
    config = RunConfig(plugin="mnist", data_dir="mnist", plugin_options={"download": False}, z_dims=(2, 2),
                       width=0.125, steps=2, batch_size=4, log_every=2)
    out = fit(config, tmp_path / "run", progress=False, echo=quiet)
    fit(config, out, resume=True, progress=False, echo=quiet, overrides={"data_dir": "mnist", "steps": 3})
    (tmp_path / "data" / "mnist").rename(tmp_path / "data" / "moved")
    fit(config, out, resume=True, progress=False, echo=quiet, overrides={"data_dir": "moved", "steps": 4})
    assert load_checkpoint(out)["trainer"]["step"] == 4
    assert json.loads((out / "config.json").read_text())["data_dir"] == str(tmp_path / "data" / "moved")


@pytest.mark.parametrize("values", ["nan", "empty", "far"])
def test_encode_refuses_tensors_it_cannot_encode_in_one_message(trained, tmp_path, values):
    x = {"nan": torch.full((2, 3, 32, 32), float("nan")), "empty": torch.zeros(0, 3, 32, 32),
         "far": torch.full((2, 3, 32, 32), 1000.0)}[values]
    torch.save(x, tmp_path / "x.pt")
    r = cli("encode", trained, "--tensor", tmp_path / "x.pt", "--out", tmp_path / "features", "--no-progress")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert not (tmp_path / "features.npz").exists()


def test_encode_refuses_a_decompression_bomb_in_one_message(trained, tmp_path, monkeypatch):
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "images" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # as a 20000 × 20000 image is to the default limit
    r = cli("encode", trained, "--images", tmp_path / "images", "--out", tmp_path / "features", "--no-progress")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert "huge.png" in r.output and "decompression bomb" in r.output


@pytest.mark.parametrize("command", ["sample", "traverse", "gibbs", "evaluate", "explore"])
def test_every_seed_option_refuses_what_the_generators_cannot_take(trained, command):
    r = cli(command, trained, "--seed", "99999999999999999999")
    assert r.exit_code == 2 and "--seed" in r.output and "0<=x<=4294967295" in r.output, r.output


def test_an_output_folder_that_cannot_be_made_is_one_message(trained, tmp_path, monkeypatch):
    run = copy_of(trained, tmp_path)
    fake_evaluation(run, 4)
    mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if "ro" in self.parts:
            raise OSError(errno.EROFS, "Read-only file system")
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    for command in (["compare", run, "--out", tmp_path / "ro" / "cmp"],
                    ["encode", run, "--out", tmp_path / "ro" / "features", "--no-progress"]):
        r = cli(*command)
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
        assert f"cannot write {tmp_path / 'ro'}: Read-only file system" in r.output


def test_a_model_too_large_for_memory_is_one_message(tmp_path):
    # a terabyte of weights in z1's head: PyTorch's allocator refuses it at once
    r = cli("fit", "--z-dims", str(10**9), "--steps", "1", "--no-progress", "--out", tmp_path / "big")
    assert r.exit_code == 1 and "does not fit in memory" in r.output and "smaller --z-dims" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "big").exists()
