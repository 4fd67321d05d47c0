import json
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from conftest import fit_args
from conftest import run as cli
from pyro.nn import pyro_method

from pyro_vlae import MODELS, VLAE, Gaussian, Trainer, build_model
from pyro_vlae.errors import ConfigError
from pyro_vlae.evaluate import (
    active_units,
    bits_per_dim,
    hierarchy_metrics,
    iwae_bound,
    kl_shares,
    mig,
    normalized_mi,
    ordering_score,
    pca_explained_variance,
)
from pyro_vlae.models.base import LatentModel


class LinearGaussian(LatentModel):
    """z ~ N(0, I), x | z ~ N(W z + b, σ² I): log p(x) = log N(x; b, W Wᵀ + σ² I) in closed form.
    The guide is the exact posterior (``exact``) or a mean-field one twice as wide as its marginals."""

    def __init__(self, exact: bool) -> None:
        super().__init__((4,), (2,))
        g = torch.Generator().manual_seed(0)
        self.W = torch.randn(4, 2, generator=g)
        self.b = torch.randn(4, generator=g)
        self.sigma = 0.5
        self.exact = exact
        precision = torch.eye(2) + self.W.T @ self.W / self.sigma**2
        self.post_cov = torch.linalg.inv(precision)

    @pyro_method
    def model(self, x=None, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        plate, batch = self.data_plate(x, num_data, subsample, batch_size)
        with plate:
            z = pyro.sample("z1", dist.Normal(torch.zeros(2), 1.0).expand([batch, 2]).to_event(1))
            return pyro.sample("x", dist.Normal(z @ self.W.T + self.b, self.sigma).to_event(1), obs=x)

    @pyro_method
    def guide(self, x, beta=1.0, *, num_data=None, subsample=None, batch_size=None):
        loc = (x - self.b) @ self.W / self.sigma**2 @ self.post_cov
        with self.data_plate(x, num_data, subsample, batch_size)[0]:
            if self.exact:
                q = dist.MultivariateNormal(loc, covariance_matrix=self.post_cov)
            else:
                q = dist.Normal(loc, 2 * self.post_cov.diagonal().sqrt()).to_event(1)
            pyro.sample("z1", q)

    def log_px(self, x):
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(4)
        return dist.MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)


def test_iwae_is_exact_for_the_true_posterior():
    model = LinearGaussian(exact=True)
    x = torch.randn(6, 4) + model.b
    out = iwae_bound(model, x, num_samples=7, chunk=3)
    assert torch.allclose(out["iwae"], model.log_px(x), atol=1e-4)
    assert torch.allclose(out["elbo"], model.log_px(x), atol=1e-4)


def test_iwae_approaches_log_likelihood_with_a_mean_field_guide():
    model = LinearGaussian(exact=False)
    x = torch.randn(64, 4) * 2 + model.b
    exact = model.log_px(x).mean()
    bounds = {k: iwae_bound(model, x, num_samples=k, chunk=1000) for k in (2, 5000)}
    elbo = float(bounds[5000]["elbo"].mean())  # mean log-weight over 5000 draws
    iwae = {k: float(b["iwae"].mean()) for k, b in bounds.items()}
    gap = float(exact) - elbo
    assert gap > 0.3  # KL(q ‖ posterior) of the widened guide
    assert elbo < iwae[2] < iwae[5000] <= float(exact) + 0.01
    assert float(exact) - iwae[5000] < 0.05 * gap


def test_iwae_grows_with_k_on_a_trained_model(tiny_shapes):
    pyro.set_rng_seed(0)
    data = tiny_shapes.x.flatten(1)  # the mlp stem keeps this test fast
    model = VLAE(data.shape[1:], (2, 2), likelihood=Gaussian(scale=0.1), width=0.125)
    trainer = Trainer(model, data, batch_size=32, lr=1e-3)
    for _ in range(40):
        trainer.step()
    x = data[:16]
    k1 = iwae_bound(model, x, num_samples=1)
    k10 = iwae_bound(model, x, num_samples=10)
    k200 = iwae_bound(model, x, num_samples=200, chunk=64)
    assert float(k200["iwae"].mean()) >= float(k200["elbo"].mean())
    assert float(k200["iwae"].mean()) > float(k10["iwae"].mean()) > float(k1["iwae"].mean())
    assert model.training  # evaluation restores the mode
    with pytest.raises(ConfigError, match="between 1 and 5000"):
        iwae_bound(model, x, num_samples=5001)


def test_bits_per_dim():
    assert bits_per_dim(0.0, 10, (0.0, 1.0)) == pytest.approx(8.0)  # uniform density on [0, 1]^D
    assert bits_per_dim(-10 * math.log(2), 10, (0.0, 1.0), discrete=True) == pytest.approx(1.0)
    assert bits_per_dim(0.0, 10, (-1.0, 1.0)) == pytest.approx(7.0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "discretized-logistic", "discretized-logistic-mixture"])
def test_bits_per_dim_of_a_probability_mass_adds_no_bin_width(likelihood):
    """The discretized likelihoods' log p(x) is a mass like Bernoulli's: bpd = −log p / (D ln 2)."""
    from pyro_vlae.data import TensorData
    from pyro_vlae.evaluate import evaluate
    from pyro_vlae.plugins import likelihood as make_likelihood

    g = torch.Generator().manual_seed(0)
    levels = 1 if likelihood == "bernoulli" else 255
    x = torch.randint(levels + 1, (32, 3, 4, 4), generator=g).float() / levels
    lik = make_likelihood(likelihood)
    assert lik.discrete
    model = build_model("vae", (3, 4, 4), (2,), lik, stem="mlp", width=0.125).eval()
    out = evaluate(model, TensorData(x), iwae_samples=4, iwae_points=8, chunk=64).to_json()
    assert out["bits_per_dim"] == pytest.approx(-out["iwae"]["value"] / (48 * math.log(2)))


def test_active_units_kl_shares_and_pca_on_hand_made_posteriors():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(2000, 3, generator=g) * torch.tensor([1.0, 0.03, 0.5])
    assert active_units(means) == 2  # variances 1, 0.0009, 0.25 against the 0.01 threshold
    kl = torch.tensor([[1.0, 2.0, 1.0]]).repeat(5, 1)
    assert kl_shares(kl) == pytest.approx([0.25, 0.5, 0.25])
    line = torch.randn(500, 1, generator=g) * torch.tensor([[1.0, 2.0, 0.0]])
    assert pca_explained_variance(line) == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)
    ev = pca_explained_variance(means)
    assert sum(ev) == pytest.approx(1.0) and ev[0] > 0.75


FACTORS = ("hue", "size", "x", "y", "shape")
LEVELS = {"hue": 1, "size": 2, "x": 2, "y": 2, "shape": 3}


def hand_made_codes(n=600):
    g = torch.Generator().manual_seed(1)
    f = torch.cat([torch.rand(n, 4, generator=g), torch.randint(5, (n, 1), generator=g).float()], 1)

    def noise(d):
        return 0.05 * torch.randn(n, d, generator=g)

    hue = torch.cat([torch.cos(2 * math.pi * f[:, :1]), torch.sin(2 * math.pi * f[:, :1])], 1) + noise(2)
    middle = f[:, 1:4] + noise(3)
    shape = torch.nn.functional.one_hot(f[:, 4].long(), 5).float()[:, :3] + noise(3)
    random = {f"z{i}": torch.randn(n, 3, generator=g) for i in (1, 2, 3)}
    return f, {
        "right": {"z1": hue, "z2": middle, "z3": shape},
        "reversed": {"z1": shape, "z2": middle, "z3": hue},
        "one layer": {"z1": random["z1"], "z2": random["z2"], "z3": torch.cat([hue, middle, shape], 1)},
        "random": random,
    }


def test_hierarchy_metrics_separate_hierarchical_from_flat_codes():
    f, codes = hand_made_codes()
    m = {name: hierarchy_metrics(c, f, FACTORS, LEVELS, circular_factors=("hue",)).to_json()
         for name, c in codes.items()}
    right = m["right"]
    assert right["ordering_probe"] > 0.7
    assert m["reversed"]["ordering_probe"] < -0.7
    assert abs(m["one layer"]["ordering_probe"]) < 0.1
    assert abs(m["random"]["ordering_probe"]) < 0.1
    assert right["ordering_nmi"] > m["one layer"]["ordering_nmi"] + 0.1
    assert right["ordering_nmi"] > m["random"]["ordering_nmi"] + 0.1
    probe = torch.tensor(right["probe"])
    assert probe[0, 0] > 0.8 and probe[1, 1:4].min() > 0.8 and probe[2, 4] > 0.6  # each factor in its layer
    assert probe[0, 1:].max() < 0.1 and probe[2, :4].max() < 0.1
    assert torch.tensor(m["random"]["probe"]).max() < 0.1
    assert len(right["mig_per_layer"]) == 3


def test_ordering_score_and_mig_on_exact_matrices():
    levels = [1, 2, 3]
    assert ordering_score(torch.eye(3).numpy(), levels) == pytest.approx(1.0)
    assert ordering_score(torch.eye(3).flip(0).numpy(), levels) == pytest.approx(-1.0)
    top = torch.zeros(3, 3)
    top[2] = 1
    assert ordering_score(top.numpy(), levels) == pytest.approx(0.0)
    assert ordering_score(torch.zeros(3, 3).numpy(), levels) == pytest.approx(0.0)
    assert math.isnan(ordering_score(torch.eye(3).numpy(), [1, 1, 1]))
    g = torch.Generator().manual_seed(0)
    v = torch.rand(3000, 2, generator=g)
    disentangled = normalized_mi(v.numpy(), v.numpy())
    entangled = normalized_mi(torch.stack([v.sum(1), v[:, 0] - v[:, 1]], 1).numpy(), v.numpy())
    assert mig(disentangled) > 0.8 > 0.3 > mig(entangled)


SMALL = fit_args(6, num_train=96, num_test=48, log_every=3)


def test_evaluate_report_and_compare_write_their_files(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for seed, run in enumerate(runs):
        r = cli("fit", *SMALL, "--seed", str(seed), "--out", str(run))
        assert r.exit_code == 0, r.output
    r = cli("report", str(runs[0]))
    assert r.exit_code == 1 and "pyro-vlae evaluate" in r.output and "Traceback" not in r.output
    r = cli("evaluate", str(runs[0]), "--iwae-samples", "0")
    assert r.exit_code == 1 and "between 1 and 5000" in r.output
    for run in runs:
        r = cli("evaluate", str(run), "--iwae-samples", "20", "--iwae-points", "8", "--no-progress",
                "--intervention-samples", "40", "--reader-steps", "30")
        assert r.exit_code == 0, r.output
        assert "IWAE-20" in r.output and "ordering score" in r.output and "re-drawn" in r.output
        assert "sample fidelity" in r.output
        assert (run / "latents.png").exists() and (run / "hierarchy.png").exists()
        assert (run / "intervention.png").exists()
    evaluation = json.loads((runs[0] / "evaluation.json").read_text())
    assert evaluation["iwae"]["samples"] == 20 and evaluation["num_points"] == 48
    assert set(evaluation["layers"]) == {"z1", "z2"} and "probe" in evaluation["hierarchy"]
    iv = evaluation["intervention"]
    assert iv["pairs"] == 40 and len(iv["intervention"]) == 2 and "centroid_x" in iv["factors"]
    # a reader trained for 30 steps on 86 images cannot read the factors: refused, statistics kept
    assert "hue" not in iv["factors"] and "too poorly" in iv["reader_refused"]
    fid = evaluation["fidelity"]  # read by the image statistics alone, the reader being refused
    assert fid["num_samples"] == 48 and "hue" not in fid["factors"] and fid["confident"] is None
    assert set(fid["distance"]) == set(fid["factors"]) and "colour" in fid["factors"]
    r = cli("report", str(runs[0]))
    assert r.exit_code == 0, r.output
    page = (runs[0] / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 6 and "ordering score" in page
    r = cli("compare", *map(str, runs), "--out", str(tmp_path / "cmp"))
    assert r.exit_code == 0, r.output
    assert "| vlae | 2 |" in r.output and "intervention matrix" in r.output and "sample fidelity" in r.output
    assert len((tmp_path / "cmp.csv").read_text().strip().splitlines()) == 3
    assert len(json.loads((tmp_path / "cmp.json").read_text())) == 2


@pytest.mark.parametrize("name", sorted(MODELS))
def test_evaluate_works_for_every_model(name):
    from pyro_vlae.data import TensorData
    from pyro_vlae.evaluate import evaluate

    model = build_model(name, (12,), (2, 2), width=0.125).eval()
    g = torch.Generator().manual_seed(0)
    factors = torch.cat([torch.rand(64, 1, generator=g), torch.randint(3, (64, 1), generator=g).float()], 1)
    data = TensorData(torch.rand(64, 12, generator=g), factors, ("a", "b"))
    out = evaluate(model, data, iwae_samples=30, iwae_points=16, chunk=64, factor_levels={"a": 1, "b": 2}).to_json()
    assert out["iwae"]["value"] >= out["iwae"]["elbo_same_draws"]
    assert sum(info["kl_share"] for info in out["layers"].values()) == pytest.approx(1.0)
    assert len(out["hierarchy"]["probe"]) == len(model.z_dims)
    assert -1 <= out["hierarchy"]["ordering_probe"] <= 1


def _evaluated_run(folder, model, plugin, options, kl, iwae_samples=20, elbo=-100.0, seed=0):
    """A run folder holding only what `compare` reads: config.json and evaluation.json."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"plugin": plugin, "plugin_options": options, "model": model}))
    layers = {f"z{i + 1}": {"kl": k, "active_units": 1} for i, k in enumerate(kl)}
    (folder / "evaluation.json").write_text(json.dumps({
        "model": model, "plugin": plugin, "seed": seed, "elbo": elbo, "layers": layers,
        "iwae": {"samples": iwae_samples, "value": elbo + 1}}))
    return folder


def test_compare_never_averages_data_sets_or_layer_counts_and_says_why_a_cell_is_empty(tmp_path):
    from pyro_vlae.evaluate.report import compare_runs, format_comparison

    runs = [
        _evaluated_run(tmp_path / "mnist", "vlae", "mnist", {}, [1.0, 2.0, 3.0], elbo=-90.0),
        _evaluated_run(tmp_path / "svhn", "vlae", "svhn", {}, [1.0, 2.0, 3.0, 4.0], elbo=-5000.0),
        _evaluated_run(tmp_path / "photos-a", "vlae", "image-folder", {"size": 32}, [1.0, 1.0, 1.0], elbo=-6000.0),
        _evaluated_run(tmp_path / "photos-b", "vlae", "image-folder", {"size": 32}, [1.0, 1.0, 1.0], elbo=-6100.0,
                       iwae_samples=50, seed=1),
    ]
    text = format_comparison(compare_runs(runs))
    assert "3 data set(s)" in text and "summarised separately" in text
    assert "## mnist, 3 layer(s)" in text and "## svhn, 4 layer(s)" in text
    assert "| vlae | 1 | -90.00 |" in text and "| vlae | 1 | -5000.00 |" in text
    assert "| vlae | 2 | -6050.00 ± 70.71 |" in text  # the two photo runs, and only them
    assert "1.0/2.0/3.0/4.0" in text  # the 4-layer KL list is not cut to 3
    assert "not run (evaluated with IWAE-50)" in text and "(1 of 2 runs)" in text
    # the same plugin and options on two folders are two data sets
    other = tmp_path / "photos-c"
    _evaluated_run(other, "vlae", "image-folder", {"size": 32}, [1.0, 1.0, 1.0])
    (other / "summary.json").write_text(json.dumps({"data": {"files": ["/elsewhere/photos"]}}))
    text = format_comparison(compare_runs([runs[2], other]))
    assert "## image-folder size=32 @ /elsewhere/photos, 3 layer(s)" in text and "2 data set(s)" in text


def test_evaluation_progress_off_a_terminal_is_plain_lines(capsys):
    """As fit and encode: no tqdm redraws in a pipe or log, about ten lines with the time left."""
    from pyro_vlae.data import TensorData
    from pyro_vlae.evaluate import evaluate, train_reader

    model = build_model("vae", (12,), (2,), width=0.125).eval()
    g = torch.Generator().manual_seed(0)
    evaluate(model, TensorData(torch.rand(64, 12, generator=g)), iwae_samples=10, iwae_points=40, chunk=20,
             progress=True)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("IWAE-10 ")]
    assert "\r" not in err and [line.split()[1] for line in lines] == [f"{n}/40" for n in range(4, 44, 4)]
    assert "points/s" in lines[0] and "left)" in lines[0] and "left" not in lines[-1]
    data = TensorData(torch.rand(40, 12, generator=g), torch.randint(2, (40, 1), generator=g).float(), ("a",))
    train_reader(data, steps=20, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and "factor reader step 20/20" in err


def test_report_shows_traversals_and_gibbs_chains_with_titled_panels(tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    r = cli("fit", *fit_args(2), "--out", run)
    assert r.exit_code == 0, r.output
    for args in (["traverse", run, "--steps", "3"], ["gibbs", run, "--steps", "2", "--chains", "2"],
                 ["evaluate", run, "--iwae-samples", "2", "--iwae-points", "8", "--no-progress", "--no-intervention"]):
        r = cli(*args)
        assert r.exit_code == 0, r.output
    r = cli("report", run)
    assert r.exit_code == 0, r.output
    page = (run / "report.html").read_text()
    assert "Latent traversals" in page and "Gibbs chains" in page
    for together, panel in (("layers.png", "layer1.png"), ("traverse.png", "traverse-z1.png")):
        whole = np.asarray(Image.open(run / together).convert("L"))
        assert whole.shape[0] == Image.open(run / panel).height + 14  # a title strip above the panels
        assert whole[:14].min() < 128  # with writing in it


def test_missing_numbers_say_why():
    from pyro_vlae.evaluate import Evaluation, format_evaluation

    results = {
        "num_points": 8, "elbo": -1.0, "recon": -1.0,
        "iwae": {"samples": 2, "num_points": 8, "value": -1.0, "elbo_same_draws": -1.0},
        "layers": {"z1": {"kl": 1.0, "kl_share": 1.0, "active_units": 1, "units": 1,
                          "pca_explained_variance": [1.0]}},
        "hierarchy": {"layers": ["z1"], "factors": ["a"], "probe": [[None]], "nmi": [[None]],
                      "mig_per_layer": [None], "mig": None, "ordering_probe": None, "ordering_nmi": None},
        "intervention": {"factors": ["a"], "layers": ["z1"], "pairs": 4, "intervention": [[None]],
                         "baseline": [0.0], "ordering_intervention": None},
    }
    text = format_evaluation(Evaluation.from_json(results))
    assert "takes one value" in text and "one-unit layer" in text and "zero baseline" in text
    assert text.count("no two factors different abstraction levels") == 2 and "nan" not in text
