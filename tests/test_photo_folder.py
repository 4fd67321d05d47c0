"""A folder of photos as people keep them: one check lists every bad file, hidden and macOS
files are ignored, the split is a seeded random sample, and `fit` trains on the first try."""

import json

import numpy as np
import pytest
from conftest import run
from PIL import Image

from pyro_vlae.data.images import list_images
from pyro_vlae.errors import DataError
from pyro_vlae.plugins import dataset

#: the files that cannot be read, with a word of the reason each is listed with
BAD = {
    "empty.png": "UnidentifiedImageError",
    "2023/garbage.png": "UnidentifiedImageError",
    "Family Pics/notreally.jpg": "UnidentifiedImageError",
    "holiday/truncated.jpg": "OSError",
    "2023/float.tiff": "floating-point",
}


def photo_folder(root):
    """Good photos of mixed sizes and modes in nested folders, and the clutter of a real folder."""
    rng = np.random.default_rng(0)

    def save(name, mode, size, fmt=None):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        channels = {"RGB": (3,), "RGBA": (4,), "L": ()}[mode]
        Image.fromarray(rng.integers(0, 256, (*size, *channels)).astype(np.uint8), mode=mode).save(path, fmt)
        return path

    for i in range(8):
        save(f"IMG_{i:04d}.JPG", "RGB", (48 + 4 * i, 64))  # upper-case endings, landscape and portrait
        save(f"holiday/beach {i}.jpeg", "RGB", (80, 30 + i))
        save(f"2023/march/grey{i}.png", "L", (20, 20))
        save(f"Family Pics/rgba{i}.png", "RGBA", (33, 17))
    save("2023/anim.gif", "RGB", (24, 24))
    Image.fromarray((np.arange(400).reshape(20, 20) * 100).astype(np.uint16)).save(root / "2023/deep16.png")
    # unreadable files
    (root / "empty.png").write_bytes(b"")
    (root / "2023/garbage.png").write_bytes(rng.integers(0, 256, 500).astype(np.uint8).tobytes())
    (root / "Family Pics/notreally.jpg").write_text("<html>a saved web page</html>")
    good = save("holiday/truncated.jpg", "RGB", (64, 64)).read_bytes()
    (root / "holiday/truncated.jpg").write_bytes(good[: len(good) // 2])
    Image.fromarray(np.ones((8, 8), np.float32)).save(root / "2023/float.tiff")
    # clutter that is not a photo of the collection
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "holiday/._beach 0.jpeg").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / "Family Pics/.DS_Store").write_bytes(b"Bud1")
    save(".thumbnails/IMG_0000.JPG", "RGB", (8, 8))
    save("2023/.hidden.png", "RGB", (8, 8))
    (root / "notes.txt").write_text("photos from the family")
    return root


@pytest.fixture
def photos(tmp_path):
    return photo_folder(tmp_path / "photos")


def test_listing_ignores_hidden_and_apple_double_files(photos):
    names = [str(p.relative_to(photos)) for p in list_images(photos)]
    assert len(names) == 32 + 2 + len(BAD)
    assert "2023/anim.gif" in names and "IMG_0003.JPG" in names
    assert not [n for n in names if "/." in n or n.startswith(".")]


def test_one_check_lists_every_unreadable_file_with_its_reason(photos):
    with pytest.raises(DataError) as err:
        dataset("image-folder", data_dir=photos, size=16, unreadable="stop", num_workers=0).load()
    message = str(err.value)
    assert f"{len(BAD)} of the {32 + 2 + len(BAD)} image files" in message
    for name, reason in BAD.items():
        line = next(line for line in message.splitlines() if line.strip().startswith(name + ":"))
        assert reason in line
    assert "-P unreadable=skip" in message


def test_the_test_split_is_a_seeded_random_sample(photos):
    def test_files(seed):
        plugin = dataset("image-folder", data_dir=photos, size=16, test_fraction=0.25, split_seed=seed,
                         unreadable="skip", num_workers=0)
        with pytest.warns(UserWarning):
            return plugin.provenance()["split"]["test_files"]

    first = test_files(0)
    assert len(first) == 8 and first == test_files(0) and first != test_files(1)
    assert len({name.split("/")[0] for name in first}) > 1  # not one sub-folder


def test_fit_trains_on_the_photo_folder_on_the_first_try(photos, tmp_path):
    out = tmp_path / "run"
    r = run("fit", "--plugin", "image-folder", "--data-dir", photos, "-P", "size=16", "-P", "num_workers=0",
            "--z-dims", "2,2", "--width", "0.125", "--steps", "3", "--batch-size", "8",
            "--no-progress", "--out", out)
    assert r.exit_code == 0, r.output
    assert f"skipping {len(BAD)} unreadable file(s) of the {32 + 2 + len(BAD)}" in r.output
    for name in BAD:
        assert r.output.count(f"{name}:") == 1, name  # every skipped file listed once
    assert "-P unreadable=stop" in r.output
    summary = json.loads((out / "summary.json").read_text())
    assert {s["path"] for s in summary["data"]["skipped"]} == set(BAD)
    assert summary["data"]["split"]["seed"] == 0 and len(summary["data"]["split"]["test_files"]) == 3
    r = run("encode", out, "--split", "test", "--no-progress", "--out", tmp_path / "f")
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "f.npz")["path"].tolist() == summary["data"]["split"]["test_files"]
