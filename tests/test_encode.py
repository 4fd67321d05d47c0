"""Per-layer features out of a run: the function, the command, its inputs and bad inputs."""

import numpy as np
import pytest
import torch
from conftest import fit_args, run
from PIL import Image

from pyro_vlae.encode import encode, encode_run, images_to_tensor, posterior
from pyro_vlae.errors import ConfigError, DataError
from pyro_vlae.models import build_model

SMALL = fit_args(num_test=24, z_dims="2,3,2")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("encode") / "run"
    r = run("fit", *SMALL, "--model", "lvae", "--out", out)
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("name", ["vlae", "hvae", "lvae", "vae"])
def test_encode_gives_each_layers_loc_and_scale(name):
    model = build_model(name, (1, 28, 28), (2, 3, 2), None, "auto", 0.125).eval()
    x = torch.rand(10, 1, 28, 28)
    features = encode(model, x, batch_size=4)
    widths = dict(zip(model.latent_sites, model.z_dims))
    assert set(features) == {f"{s}_{k}" for s in widths for k in ("loc", "scale")}
    for s, d in widths.items():
        assert features[f"{s}_loc"].shape == (10, d) and (features[f"{s}_scale"] > 0).all()
    again = encode(model, x, batch_size=10)  # the mean path is deterministic and batching does not matter
    assert all(torch.allclose(features[k], again[k], atol=1e-5) for k in features)
    # the top layer's parameters are those of the guide's first draw for a top-down guide, and for the VLAE
    loc, scale = posterior(model, x)[model.latent_sites[-1]]
    assert torch.allclose(features[f"{model.latent_sites[-1]}_loc"], loc, atol=1e-5)
    if name != "vae":
        only = encode(model, x, layers=[model.num_layers])
        assert set(only) == {f"z{model.num_layers}_loc", f"z{model.num_layers}_scale"}


def test_encode_refuses_a_missing_layer():
    model = build_model("vlae", (1, 28, 28), (2, 2), None, "auto", 0.125)
    with pytest.raises(ConfigError, match="layer 3 does not exist"):
        encode(model, torch.rand(2, 1, 28, 28), layers=[3])


def test_encode_command_writes_npz_and_pt(run_folder, tmp_path):
    r = run("encode", run_folder, "--split", "test", "--layers", "3", "--no-progress", "--out", tmp_path / "z3")
    assert r.exit_code == 0, r.output
    npz, pt = np.load(tmp_path / "z3.npz"), torch.load(tmp_path / "z3.pt", weights_only=True)
    assert set(npz) == set(pt) == {"z3_loc", "z3_scale", "index"} and npz["index"].tolist() == list(range(24))
    assert npz["z3_loc"].shape == (24, 2)
    assert np.allclose(npz["z3_loc"], pt["z3_loc"].numpy())
    as_function = encode_run(run_folder, "test", layers=[3])
    assert torch.allclose(as_function["z3_loc"], pt["z3_loc"])
    r = run("encode", run_folder, "--no-progress")  # default: all layers of the test split, into the run folder
    assert r.exit_code == 0, r.output
    sites = {f"z{i}_{k}" for i in (1, 2, 3) for k in ("loc", "scale")}
    assert set(np.load(run_folder / "features-test.npz")) == sites | {"index"}


def test_encode_reads_an_image_folder_and_resizes_with_a_message(run_folder, tmp_path):
    images = tmp_path / "images" / "sub"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(images / f"{i}.png")
    Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8), mode="L").save(images / "grey.png")
    r = run("encode", run_folder, "--images", tmp_path / "images", "--no-progress", "--out", tmp_path / "f")
    assert r.exit_code == 0, r.output
    assert "resized 3 image(s) to 32×32" in r.output and "30×40" in r.output
    assert "converted 1 image(s) to RGB" in r.output
    npz = np.load(tmp_path / "f.npz")  # no pickle needed for the paths
    assert npz["z1_loc"].shape == (4, 2)
    names = ["sub/0.png", "sub/1.png", "sub/2.png", "sub/grey.png"]
    assert npz["path"].tolist() == names and npz["index"].tolist() == [0, 1, 2, 3]
    pt = torch.load(tmp_path / "f.pt", weights_only=True)
    assert pt["path"] == names and torch.equal(pt["z1_loc"], torch.from_numpy(npz["z1_loc"]))


def test_sixteen_bit_images_are_scaled_and_float_ones_refused():
    """PIL's own conversion clips 16-bit grey to white: it is scaled from 0-65535 instead."""
    ramp = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    notes = []
    x = images_to_tensor([Image.fromarray(ramp)], (3, 32, 32), echo=notes.append)
    assert x.shape == (1, 3, 32, 32) and "converted 1 image(s) to RGB" in notes[0] and "I;16" in notes[0]
    assert torch.allclose(x[0, 0], torch.from_numpy(np.round(ramp / 257) / 255).float(), atol=1e-6)
    assert torch.allclose(images_to_tensor([Image.fromarray(ramp)], (1, 32, 32))[0, 0], x[0, 0])
    with pytest.raises(DataError, match="floating-point pixels"):
        images_to_tensor([Image.fromarray(np.ones((32, 32), np.float32))], (1, 32, 32), names=["f.tiff"])


@pytest.mark.parametrize("kind", ["corrupt", "float", "empty"])
def test_encode_refuses_an_unreadable_image_folder_and_writes_nothing(run_folder, tmp_path, kind):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(images / "good.png")
    message = {"corrupt": "bad.png: UnidentifiedImageError", "float": "floating-point pixels",
               "empty": "no image files"}[kind]
    if kind == "corrupt":
        (images / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    elif kind == "float":
        Image.fromarray(np.ones((32, 32), np.float32)).save(images / "bad.tiff")
    else:
        (images / "good.png").unlink()
        (images / "notes.txt").write_text("no pictures here")
    r = run("encode", run_folder, "--images", images, "--out", tmp_path / "out")
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
    assert not list(tmp_path.glob("out*"))


def test_encode_reads_tensors_and_refuses_the_wrong_shape(run_folder, tmp_path):
    x = np.random.default_rng(0).random((5, 3, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    torch.save(torch.from_numpy(x[:2]), tmp_path / "x.pt")
    r = run("encode", run_folder, "--tensor", tmp_path / "x.npy", "--no-progress", "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    r = run("encode", run_folder, "--tensor", tmp_path / "x.pt", "--no-progress", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a["z1_loc"].shape == (5, 2) and np.allclose(a["z2_loc"][:2], b["z2_loc"], atol=1e-5)

    np.save(tmp_path / "wrong.npy", x[:, :1])
    r = run("encode", run_folder, "--tensor", tmp_path / "wrong.npy", "--out", tmp_path / "c")
    assert r.exit_code == 1 and "shape (5, 1, 32, 32)" in r.output and "(N, 3, 32, 32)" in r.output
    assert "Traceback" not in r.output and not list(tmp_path.glob("c*"))


def test_encode_progress_off_a_terminal_is_plain_lines(run_folder, tmp_path, capsys):
    """As for fit: no tqdm redraws in a log file, one line per tenth of the data instead."""
    r = run("encode", run_folder, "--batch-size", "4", "--out", tmp_path / "f")  # 24 points, 6 batches
    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("encode ")]
    assert [line.split()[1] for line in lines] == ["4/24", "8/24", "12/24", "16/24", "20/24", "24/24"]
    assert "points/s" in lines[-1] and "\r" not in r.output and "\r" not in capsys.readouterr().err
    lines = []
    encode(build_model("vae", (1, 28, 28), (2,), None, "auto", 0.125), torch.rand(100, 1, 28, 28), batch_size=4,
           progress=True, echo=lines.append)
    lines = [line for line in lines if line.startswith("encode ")]  # a busy machine adds a forecast line
    assert [line.split()[1] for line in lines] == [f"{n}/100" for n in (12, 24, 36, 48, 60, 72, 84, 96, 100)]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "4"], "layer 4 does not exist"),
        (["--layers", "x"], "not a list of layers"),
        (["--split", "valid"], "neither a split"),
        (["--split", "test", "--tensor", "{tensor}"], "exclude each other"),
        (["--tensor", "{corrupt}"], "cannot read"),
    ],
)
def test_encode_bad_input_is_one_clear_message_and_writes_nothing(run_folder, tmp_path, args, message):
    (tmp_path / "corrupt.pt").write_bytes(b"not a tensor")
    (tmp_path / "x.npy").write_bytes(b"")
    args = [a.format(tensor=tmp_path / "x.npy", corrupt=tmp_path / "corrupt.pt") for a in args]
    r = run("encode", run_folder, *args, "--out", tmp_path / "out")
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output
    assert not list(tmp_path.glob("out*"))


def test_encode_refuses_a_folder_that_is_not_a_run(tmp_path):
    r = run("encode", tmp_path)
    assert r.exit_code == 1 and "no checkpoint" in r.output and "Traceback" not in r.output
    assert list(tmp_path.iterdir()) == []


def test_a_classifier_on_one_layer_as_in_the_docs(run_folder):
    """docs/using-layers.md's scikit-learn example, on the shapes factor "shape"."""
    sklearn = pytest.importorskip("sklearn.linear_model", reason="the example needs scikit-learn")
    from pyro_vlae.run_folder import load_run

    plugin = load_run(run_folder).plugin
    column = plugin.load("test").factor_names.index("shape")
    labels = {s: plugin.load(s).factors[:, column].long() for s in ("train", "test")}
    z3 = {s: encode_run(run_folder, s, layers=[3])["z3_loc"] for s in ("train", "test")}
    classifier = sklearn.LogisticRegression(max_iter=1000).fit(z3["train"], labels["train"])
    assert 0.0 <= classifier.score(z3["test"], labels["test"]) <= 1.0
    assert z3["train"].shape == (64, 2) and labels["train"].shape == (64,)
