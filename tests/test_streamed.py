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
