"""Streamed data sets (image folders, CelebA): bad files are named, and every command works on them."""

import numpy as np
import pytest
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
    truncate(folder / "img013.jpg")
    data = dataset("image-folder", data_dir=folder, size=16, test_fraction=0.0, num_workers=workers).load()
    batches = data.loader(batch_size=4)
    first = next(iter(batches))  # good files before the bad one read as usual
    assert first.shape == (4, 3, 16, 16)
    with pytest.raises(DataError, match=r"cannot read the image \S*img013.jpg \(OSError"):
        for _ in data.batches(4):
            pass
    (folder / "img000.jpg").write_text("not an image at all")
    with pytest.raises(DataError, match=r"img000.jpg .*UnidentifiedImageError") as err:
        dataset("image-folder", data_dir=folder, size=16, num_workers=0).load()
    assert "replace the file with a good copy, or remove it" in str(err.value)
