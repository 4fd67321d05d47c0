"""Built-in data-set plugins, loaded from small files written here in each real format."""

import gzip
import struct

import numpy as np
import pyro
import pytest
import torch
from conftest import fit_args, run
from PIL import Image

from pyro_vlae import Trainer
from pyro_vlae.data import StreamData
from pyro_vlae.errors import DataError
from pyro_vlae.models import VLAE
from pyro_vlae.plugins import dataset


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_VLAE_CACHE", str(tmp_path / "cache"))


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file (big-endian header: 0, 0, type 0x08 = ubyte, number of dimensions; then sizes)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder, n_train=40, n_test=20, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        arrays[f"{prefix}-images-idx3-ubyte"] = rng.integers(0, 256, (n, 28, 28))
        arrays[f"{prefix}-labels-idx1-ubyte"] = rng.integers(0, 10, (n,))
    for name, array in arrays.items():
        data = idx_bytes(array)
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("layout", ["gz", "plain", "torchvision"])
def test_mnist_reads_the_idx_files_where_the_user_keeps_them(tmp_path, layout):
    folder = tmp_path / "mnist"
    target = folder / "MNIST" / "raw" if layout == "torchvision" else folder
    arrays = write_mnist(target, compress=layout == "gz")
    written = sorted(p.name for p in folder.iterdir())
    plugin = dataset("mnist", data_dir=folder, download=False)
    train, test = plugin.load("train"), plugin.load("test")
    assert train.x.shape == (40, 1, 28, 28) and test.x.shape == (20, 1, 28, 28)
    assert torch.equal(train.x[:, 0] * 255, torch.from_numpy(arrays["train-images-idx3-ubyte"]).float())
    assert torch.equal(test.factors[:, 0], torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).float())
    assert train.x.dtype == torch.float32 and plugin.recommended["z_dims"] == (2, 2, 2)
    assert sorted(p.name for p in folder.iterdir()) == written  # the user's folder is left as it was


def test_fashion_mnist_uses_the_same_files_format(tmp_path):
    write_mnist(tmp_path / "fashion")
    assert dataset("fashion-mnist", data_dir=tmp_path / "fashion", download=False).load("test").x.shape[0] == 20


def test_mnist_missing_truncated_and_wrong_files(tmp_path):
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*--data-dir"):
        dataset("mnist", data_dir=tmp_path / "nothing", download=False).load()
    folder = tmp_path / "truncated"
    write_mnist(folder)
    whole = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        dataset("mnist", data_dir=folder, download=False).load()
    plain = tmp_path / "short"
    write_mnist(plain, compress=False)
    data = (plain / "train-images-idx3-ubyte").read_bytes()
    (plain / "train-images-idx3-ubyte").write_bytes(data[:-100])
    with pytest.raises(DataError, match="not valid IDX files"):
        dataset("mnist", data_dir=plain, download=False).load()
    swapped = tmp_path / "swapped"
    write_mnist(swapped, compress=False)
    labels = (swapped / "t10k-labels-idx1-ubyte").read_bytes()
    (swapped / "t10k-images-idx3-ubyte").write_bytes(labels)
    with pytest.raises(DataError, match="swapped"):
        dataset("mnist", data_dir=swapped, download=False).load("test")
    (swapped / "t10k-images-idx3-ubyte").write_bytes(b"this is not an IDX file at all")
    with pytest.raises(DataError, match="not valid IDX files"):
        dataset("mnist", data_dir=swapped, download=False).load("test")


def test_binarized_mnist_dynamic_and_static(tmp_path):
    write_mnist(tmp_path / "m")
    plugin = dataset("binarized-mnist", data_dir=tmp_path / "m", download=False)
    train, test = plugin.load("train"), plugin.load("test")
    a, b = train.head(), train.head()
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)  # fresh draws every time
    assert set(test.x.unique().tolist()) == {0.0, 1.0} and torch.equal(test.x, plugin.load("test").x)
    assert plugin.default_likelihood == "bernoulli"
    static = tmp_path / "static"
    static.mkdir()
    rows = np.random.default_rng(0).integers(0, 2, (7, 784))
    for split in ["train", "test"]:
        (static / f"binarized_mnist_{split}.amat").write_text("\n".join(" ".join(map(str, r)) for r in rows) + "\n")
    loaded = dataset("binarized-mnist", data_dir=static, download=False).load("test")
    assert loaded.transform is None and torch.equal(loaded.x.view(7, 784), torch.from_numpy(rows).float())
    (static / "binarized_mnist_test.amat").write_text("0 1 2\n")
    with pytest.raises(DataError, match="not a binarized MNIST"):
        dataset("binarized-mnist", data_dir=static, download=False).load("test")


def write_svhn(folder, splits=("train", "test"), n=12):
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for split in splits:
        savemat(folder / f"{split}_32x32.mat", {
            "X": rng.integers(0, 256, (32, 32, 3, n)).astype(np.uint8),
            "y": rng.integers(1, 11, (n, 1)).astype(np.uint8),
        })


def test_svhn_reads_mat_files(tmp_path):
    write_svhn(tmp_path / "svhn", splits=("train", "test", "extra"))
    plugin = dataset("svhn", data_dir=tmp_path / "svhn", download=False)
    train = plugin.load("train")
    assert train.x.shape == (12, 3, 32, 32) and train.x.min() >= 0 and train.x.max() <= 1
    assert set(train.factors.flatten().tolist()) <= set(range(10))  # torchvision maps label 10 to 0
    assert plugin.recommended["z_dims"] == (5, 5, 5, 10)
    both = dataset("svhn", data_dir=tmp_path / "svhn", download=False, extra=True).load("train")
    assert len(both) == 24
    with pytest.raises(DataError, match="extra_32x32.mat"):
        dataset("svhn", data_dir=tmp_path / "none", download=False).load("extra")
    from scipy.io import savemat

    savemat(tmp_path / "svhn" / "test_32x32.mat", {"images": np.zeros((2, 2))})
    with pytest.raises(DataError, match="not a valid SVHN file"):
        plugin.load("test")
    (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DataError, match="not a valid SVHN file"):
        plugin.load("test")


def write_celeba(folder, n=8):
    """A CelebA folder: img_align_celeba/ of 178×218 JPEGs and the five list files."""
    images = folder / "img_align_celeba"
    images.mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    rng = np.random.default_rng(2)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3)).astype(np.uint8)).save(images / name)
    split = [0] * (n - 4) + [1, 1, 2, 2]
    (folder / "list_eval_partition.txt").write_text("".join(f"{f} {s}\n" for f, s in zip(names, split)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{f} {i}\n" for i, f in enumerate(names)))
    attrs = ["5_o_Clock_Shadow", "Smiling"]
    (folder / "list_attr_celeba.txt").write_text(
        f"{n}\n{' '.join(attrs)}\n" + "".join(f"{f} 1 -1\n" for f in names)
    )
    (folder / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{f} 1 2 3 4\n" for f in names)
    )
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\nlefteye_x lefteye_y\n" + "".join(f"{f} 69 109\n" for f in names)
    )


def test_celeba_streams_cropped_64x64_faces(tmp_path):
    write_celeba(tmp_path / "celeba")
    for data_dir in [tmp_path / "celeba", tmp_path]:  # the folder itself, or torchvision's parent
        plugin = dataset("celeba", data_dir=data_dir, download=False, num_workers=0)
        train = plugin.load("train")
        assert isinstance(train, StreamData) and len(train) == 4 and len(plugin.load("test")) == 2
        x = train.head(2)
        assert x.shape == (2, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
        batch = next(iter(train.batches(3)))
        assert batch.shape == (3, 3, 64, 64)
    other = tmp_path / "faces"
    write_celeba(other)
    (other / "list_attr_celeba.txt").unlink()
    with pytest.raises(DataError, match="lacks list_attr_celeba.txt, which lists the images"):
        dataset("celeba", data_dir=other, download=False).load()
    with pytest.raises(DataError, match="img_align_celeba/"):
        dataset("celeba", data_dir=tmp_path / "empty", download=False).load()


def write_images(folder):
    rng = np.random.default_rng(3)
    for i, (sub, size) in enumerate([("", (40, 30)), ("a", (20, 20)), ("a/b", (64, 80)), ("c", (33, 17))] * 3):
        path = folder / sub / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3)).astype(np.uint8)).save(path)
    (folder / "notes.txt").write_text("not an image")


def test_image_folder_reads_any_layout(tmp_path):
    write_images(tmp_path / "pics")
    plugin = dataset("image-folder", data_dir=tmp_path / "pics", size=16, test_fraction=0.25, num_workers=0)
    train, test = plugin.load("train"), plugin.load("test")
    assert len(train) == 9 and len(test) == 3 and train.shape == (3, 16, 16)
    x = train.head()
    assert x.shape == (9, 3, 16, 16) and 0 <= x.min() and x.max() <= 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        dataset("image-folder", data_dir=tmp_path / "empty", size=8).load()
    with pytest.raises(DataError, match="--data-dir"):
        dataset("image-folder").load()


def test_streamed_training_matches_in_memory_training():
    x = torch.rand(48, 1, 8, 8)
    stream = StreamData(torch.utils.data.TensorDataset(x), (1, 8, 8), num_workers=1)
    params = []
    for data in [x, stream]:
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        model = VLAE((1, 8, 8), (2,), width=0.125)
        trainer = Trainer(model, data, batch_size=16, seed=3)
        for _ in range(5):  # crosses an epoch boundary (3 batches per epoch)
            trainer.step()
        assert torch.equal(trainer.batch(4), x[trainer.batch_indices(4)])
        params.append(model.state_dict())
    assert all(torch.equal(params[0][k], params[1][k]) for k in params[0])


FAST = fit_args(batch_size=4, num_train=None)


def test_fit_on_files_through_the_command_line(tmp_path):
    write_mnist(tmp_path / "mnist", n_train=16, n_test=8)
    r = run("fit", "--plugin", "binarized-mnist", "--data-dir", str(tmp_path / "mnist"), "-P", "download=false",
            *FAST, "--out", str(tmp_path / "bin"))
    assert r.exit_code == 0, r.output
    assert "likelihood=bernoulli" in r.output and (tmp_path / "bin" / "layers.png").exists()
    write_images(tmp_path / "pics")
    r = run("fit", "--plugin", "image-folder", "--data-dir", str(tmp_path / "pics"), "-P", "size=16",
            "-P", "num_workers=1", *FAST, "--out", str(tmp_path / "img"))
    assert r.exit_code == 0, r.output
    assert "likelihood=discretized-logistic" in r.output and "test ELBO" in r.output
    r = run("fit", "--plugin", "mnist", "--data-dir", str(tmp_path / "none"), "-P", "download=false", *FAST,
            "--out", str(tmp_path / "x"))
    assert r.exit_code == 1 and "train-images-idx3-ubyte" in r.output and "Traceback" not in r.output
    r = run("fit", "--plugin", "mnist", "--data-dir", str(tmp_path / "mnist"), "-P", "download=false",
            "--likelihood", "bernoulli", *FAST, "--out", str(tmp_path / "y"))
    assert r.exit_code == 1 and "continuous data" in r.output
    assert not (tmp_path / "y" / "checkpoint.pt").exists()
