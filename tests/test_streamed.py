"""Streamed data sets (image folders, CelebA): bad files are named, and every command works on them."""

import numpy as np
import pytest
from conftest import run
from PIL import Image

from pyro_vlae.errors import DataError
from pyro_vlae.plugins import dataset


def write_folder(folder, n=24, size=(20, 20)):
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3)).astype(np.uint8)).save(folder / f"img{i:03d}.jpg")
    return folder


def truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


@pytest.mark.parametrize("workers", [0, 2])
def test_a_truncated_jpeg_is_named_by_the_loader(tmp_path, workers):
    folder = write_folder(tmp_path / "pics")
    data = dataset("image-folder", data_dir=folder, size=16, test_fraction=0.0, num_workers=workers).load()
    truncate(folder / "img013.jpg")  # damaged after the folder was checked
    batches = data.loader(batch_size=4)
    first = next(iter(batches))  # good files before the bad one read as usual
    assert first.shape == (4, 3, 16, 16)
    with pytest.raises(DataError, match=r"cannot read the image \S*img013.jpg \(OSError"):
        for _ in data.batches(4):
            pass
    (folder / "img000.jpg").write_text("not an image at all")
    with pytest.raises(DataError, match=r"img000.jpg: UnidentifiedImageError") as err:
        dataset("image-folder", data_dir=folder, size=16, unreadable="stop", num_workers=0).load()
    assert "img013.jpg: OSError" in str(err.value) and "-P unreadable=skip" in str(err.value)


QUICK = ("--iwae-samples", "3", "--iwae-points", "4", "--intervention-samples", "20")


def test_evaluate_and_gibbs_work_on_a_streamed_data_set(tmp_path):
    folder = write_folder(tmp_path / "pics", n=20)
    out = tmp_path / "run"
    r = run("fit", "--plugin", "image-folder", "--data-dir", folder, "-P", "size=16", "-P", "num_workers=1",
            "-P", "test_fraction=0.5", "--z-dims", "2,2", "--width", "0.125", "--steps", "2", "--batch-size", "4",
            "--no-progress", "--out", out)
    assert r.exit_code == 0, r.output
    r = run("evaluate", out, *QUICK, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "10 points" in r.output and "random subset, seed 0" in r.output
    first = (out / "evaluation.json").read_text()
    r = run("evaluate", out, *QUICK, "--num-points", "8", "--no-progress")
    assert r.exit_code == 0 and "8 points" in r.output, r.output
    r = run("evaluate", out, *QUICK, "--no-progress")
    assert (out / "evaluation.json").read_text() == first  # repeatable
    r = run("gibbs", out, "--steps", "2", "--chains", "3")
    assert r.exit_code == 0, r.output
    assert (out / "gibbs.png").exists()


def test_a_bad_file_met_during_training_stops_with_a_checkpoint_and_resumes(tmp_path, monkeypatch):
    import pyro_vlae.data.image_folder as image_folder

    monkeypatch.setattr(image_folder, "find_unreadable", lambda paths: [])  # damaged after the check
    folder = write_folder(tmp_path / "pics", n=30)
    good = (folder / "img021.jpg").read_bytes()
    truncate(folder / "img021.jpg")
    out = tmp_path / "run"
    args = ["--plugin", "image-folder", "--data-dir", folder, "-P", "size=16", "-P", "num_workers=1",
            "-P", "test_fraction=0.2", "--z-dims", "2,2", "--width", "0.125", "--batch-size", "4",
            "--log-every", "1", "--checkpoint-every", "100", "--no-progress", "--out", out]
    r = run("fit", *args, "--steps", "8")
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "cannot read the image" in r.output and "img021.jpg" in r.output
    from pyro_vlae.run_folder import load_checkpoint

    step = load_checkpoint(out)["trainer"]["step"]
    assert f"the checkpoint of step {step} is saved" in r.output and 0 <= step < 8
    assert (out / "metrics.csv").read_text().count("\n") == step + 1  # every logged row kept
    (folder / "img021.jpg").write_bytes(good)
    r = run("fit", "--resume", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    assert load_checkpoint(out)["trainer"]["step"] == 8


def test_fit_on_a_streamed_data_set_leaves_no_loader_worker_behind(tmp_path):
    import multiprocessing

    folder = write_folder(tmp_path / "pics", n=20)
    r = run("fit", "--plugin", "image-folder", "--data-dir", folder, "-P", "size=16", "-P", "num_workers=2",
            "--z-dims", "2,2", "--width", "0.125", "--steps", "7", "--batch-size", "4",
            "--no-progress", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert multiprocessing.active_children() == []  # ended when fit returned, not at some later collection


DROPPED_TRAINER = """
import gc, multiprocessing, sys, torch
from pyro_vlae import VLAE
from pyro_vlae.data import StreamData
from pyro_vlae.train import Trainer

x = torch.rand(48, 1, 8, 8)
trainer = Trainer(VLAE((1, 8, 8), (2,), width=0.125),
                  StreamData(torch.utils.data.TensorDataset(x), (1, 8, 8), num_workers=2), batch_size=16)
for _ in range(4):
    trainer.step()
if sys.argv[1] == "dropped":  # collected as a reference cycle: the loader's queues close first
    del trainer
    gc.collect()
    assert multiprocessing.active_children() == [], multiprocessing.active_children()
print("done", flush=True)
"""


@pytest.mark.parametrize("how", ["dropped", "held to the end"])
def test_a_process_that_trained_on_a_stream_exits(tmp_path, how):
    """Loader workers ignore SIGTERM (the main process handles it), so workers nobody ended would
    make multiprocessing's exit handler wait for them forever."""
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(DROPPED_TRAINER)
    done = subprocess.run([sys.executable, script, how.split()[0]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr
