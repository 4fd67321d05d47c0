"""The celeba plugin on what users have: the images and list_attr_celeba.txt, small JPEGs."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_vlae.data.celeba import OFFICIAL_SPLIT, fallback_split
from pyro_vlae.errors import DataError, FallbackWarning
from pyro_vlae.plugins import dataset
from tests.test_datasets import write_celeba


def test_images_and_the_attribute_file_are_enough(tmp_path):
    write_celeba(tmp_path, n=10)
    for name in ["identity_CelebA.txt", "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt"]:
        (tmp_path / name).unlink()
    plugin = dataset("celeba", data_dir=tmp_path, download=False, num_workers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the official partition is there: nothing to announce
        assert [len(plugin.load(s)) for s in plugin.splits] == [6, 2, 2]
    (tmp_path / "list_eval_partition.txt").unlink()
    plugin = dataset("celeba", data_dir=tmp_path, download=False, num_workers=0)
    with pytest.warns(FallbackWarning, match="no list_eval_partition.txt: split by the order of list_attr"):
        train = plugin.load("train")
    assert [len(plugin.load(s)) for s in plugin.splits] == [8, 1, 1]
    assert train.head(2).shape == (2, 3, 64, 64)


def test_fallback_split_is_the_official_partition_for_the_whole_set():
    names = [f"{i + 1:06d}.jpg" for i in range(sum(OFFICIAL_SPLIT.values()))]
    split = fallback_split(names)
    assert {k: len(v) for k, v in split.items()} == OFFICIAL_SPLIT
    assert split["valid"][0] == "162771.jpg" and split["test"][0] == "182638.jpg"


def test_partition_file_that_misses_images_or_cannot_be_parsed(tmp_path):
    write_celeba(tmp_path, n=6)
    part = tmp_path / "list_eval_partition.txt"
    part.write_text("".join(part.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(DataError, match="does not assign 000006.jpg"):
        dataset("celeba", data_dir=tmp_path, download=False).load()
    part.write_text("000001.jpg train\n")
    with pytest.raises(DataError, match="cannot be parsed"):
        dataset("celeba", data_dir=tmp_path, download=False).load()


def test_images_smaller_than_the_crop_are_scaled_not_padded(tmp_path):
    write_celeba(tmp_path, n=6)
    images = tmp_path / "img_align_celeba"
    for path in sorted(images.iterdir()):
        Image.new("RGB", (89, 109), (255, 255, 255)).save(path)  # half the aligned size, all white
    plugin = dataset("celeba", data_dir=tmp_path, download=False, num_workers=0)
    with pytest.warns(FallbackWarning, match=r"smaller than the 108-px centre crop \(e.g. 000001.jpg: 89×109\)"):
        x = plugin.load("train").head()
    assert x.shape == (2, 3, 64, 64) and torch.equal(x, torch.ones_like(x))  # no black border
    # a half-size copy of an aligned image shows what the full-size image shows (same field of view)
    yy, xx = np.mgrid[0:218, 0:178]
    face = np.stack([xx * 255 // 177, yy * 255 // 217, (xx * yy) % 256 * 0], -1).astype(np.uint8)
    Image.fromarray(face).resize((89, 109), Image.BICUBIC).save(images / "000001.jpg", quality=100)
    small = plugin.load("train").head(1)[0]
    Image.fromarray(face).save(images / "000001.jpg", quality=100)
    full = plugin.load("train").head(1)[0]
    assert (small - full).abs().mean() < 0.02


def test_greyscale_and_unreadable_images(tmp_path):
    write_celeba(tmp_path, n=6)
    Image.fromarray(np.full((218, 178), 128, np.uint8)).save(tmp_path / "img_align_celeba" / "000002.jpg")
    data = dataset("celeba", data_dir=tmp_path, download=False, num_workers=0).load("train")
    assert data.head(2).shape == (2, 3, 64, 64)
    (tmp_path / "img_align_celeba" / "000002.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(DataError, match=r"cannot read the image .*000002.jpg"):
        data.head(2)
