"""The plugin mechanism: the template third-party plugin, installed here, and broken plugins."""

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import fit_args, run

from pyro_vlae.data import TensorData
from pyro_vlae.errors import PluginError
from pyro_vlae.plugins import DATASETS, dataset, likelihood, list_plugins, load_data, load_plugin

TEMPLATE = Path(__file__).resolve().parents[1] / "plugins" / "pyro-vlae-bars"
FAST = fit_args(batch_size=8, num_train=32)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The template plugin installed with pip, offline, into a folder of its own."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "source"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        check=True, capture_output=True,
    )
    return target


@pytest.fixture
def on_path(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    importlib.invalidate_caches()
    yield installed
    for name in [m for m in sys.modules if m.startswith("pyro_vlae_bars")]:
        del sys.modules[name]


def test_template_plugin_is_discovered_listed_and_usable(on_path, tmp_path):
    infos = {i.name: i for i in list_plugins()}
    assert infos["bars"].distribution == "pyro-vlae-bars" and infos["bars"].kind == "dataset"
    assert infos["beta"].distribution == "pyro-vlae-bars" and infos["beta"].kind == "likelihood"
    assert infos["mnist"].distribution == "pyro-vlae"  # built-ins come through the same groups
    bars = dataset("bars", num_train=10).load()
    assert isinstance(bars, TensorData) and bars.x.shape == (10, 1, 16, 16)
    # the installed command line sees it too
    env = {**os.environ, "PYTHONPATH": str(on_path)}
    out = subprocess.run([sys.executable, "-m", "pyro_vlae.cli", "plugins"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert any(line.split()[:3] == ["bars", "dataset", "pyro-vlae-bars"] for line in out.splitlines())
    r = run("fit", "--plugin", "bars", "--likelihood", "beta", *FAST, "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    assert "on bars" in r.output and "likelihood=beta" in r.output and (tmp_path / "run" / "samples.png").exists()


def test_without_the_plugin_its_names_are_unknown():
    with pytest.raises(PluginError, match="(?s)unknown dataset plugin 'bars'.*mnist"):
        load_plugin(DATASETS, "bars")


def fake_distribution(folder: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    """A minimal installed distribution: ``NAME.dist-info`` with metadata and entry points."""
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(source)


@pytest.fixture
def broken(tmp_path, monkeypatch):
    site = tmp_path / "site"
    fake_distribution(
        site, "broken-plugins",
        "[pyro_vlae.datasets]\nexplodes = explodes_mod:Data\nnot-a-class = wrong_mod:THING\n"
        "bad-data = wrong_mod:BadData\n\n[pyro_vlae.likelihoods]\nwrong-type = wrong_mod:NotALikelihood\n",
        {
            "explodes_mod": "raise ImportError('needs libfoo 2.0')\n",
            "wrong_mod": (
                "from pyro_vlae.data import DatasetPlugin\n"
                "THING = 42\n"
                "class NotALikelihood:\n    pass\n"
                "class BadData(DatasetPlugin):\n"
                "    name = 'bad-data'\n    shape = (1, 4, 4)\n"
                "    def load(self, split='train'):\n        return [[0.0] * 16] * 8\n"
            ),
        },
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    for name in ["explodes_mod", "wrong_mod"]:
        sys.modules.pop(name, None)


def test_broken_plugins_warn_and_everything_else_works(broken, tmp_path):
    r = run("plugins")
    assert r.exit_code == 0
    warnings = [line for line in r.output.splitlines() if line.startswith("warning:")]
    assert any("'explodes' failed to import: ImportError: needs libfoo 2.0" in w for w in warnings)
    assert any("'not-a-class'" in w and "not a subclass" in w for w in warnings)
    assert any("'wrong-type'" in w and "Likelihood" in w for w in warnings)
    assert "BROKEN" in r.output and "mnist" in r.output and "gaussian" in r.output
    with pytest.raises(PluginError, match="failed to import"):
        dataset("explodes")
    with pytest.raises(PluginError, match="not a subclass"):
        likelihood("wrong-type")
    with pytest.raises(PluginError, match="'bad-data' returned list"):
        load_data(dataset("bad-data"), "train")
    for name, message in [("explodes", "needs libfoo 2.0"), ("not-a-class", "not a subclass"),
                          ("bad-data", "returned list")]:
        r = run("fit", "--plugin", name, *fit_args(batch_size=8, num_train=None), "--out", str(tmp_path / name))
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output
    assert dataset("shapes", num_train=8).load().x.shape == (8, 3, 32, 32)
    assert torch.is_tensor(likelihood("laplace").scale)
