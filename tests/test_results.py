"""Evaluation results convert to the JSON of ``evaluation.json`` and back unchanged."""

import json

import pytest

from pyro_vlae.evaluate import (
    Evaluation,
    Fidelity,
    Hierarchy,
    InterventionMatrix,
    IwaeResult,
    LayerSummary,
    RunInfo,
    format_evaluation,
)
from pyro_vlae.evaluate.formatting import cells, dash, json_safe, rounded


def iwae():
    return IwaeResult(samples=20, num_points=8, points="random subset, seed 0", value=-10.5, elbo=-11.0,
                      elbo_same_draws=-11.25)


def layer():
    return LayerSummary(kl=1.5, kl_share=0.75, units=2, active_units=1, activity=[0.5, 0.001],
                        pca_explained_variance=[0.9, 0.1])


def hierarchy():
    return Hierarchy(layers=["z1", "z2"], factors=["hue", "x"], factor_levels={"hue": 1, "x": 2},
                     probe=[[0.9, 0.1], [None, 0.8]], nmi=[[0.5, 0.0], [0.1, 0.4]], mig=None,
                     mig_per_layer=[0.2, None], ordering_probe=0.7, ordering_nmi=None)


def intervention():
    kinds = {"hue": "circular", "ink": "statistic"}
    return InterventionMatrix(layers=["z1", "z2"], factors=["hue", "ink"], kinds=kinds,
                              factor_levels={"hue": 1}, matrix=[[1.0, None], [0.0, None]],
                              change=[[0.2, 0.0], [0.0, 0.0]], baseline=[0.2, 0.0], ordering=None, pairs=40, seed=0,
                              reader={"quality": {"hue": 0.99}, "min_quality": 0.8, "steps": 30}, narrow={"hue": 0.2})


def fidelity():
    return Fidelity(factors=["hue", "ink"], kinds={"hue": "circular", "ink": "statistic"},
                    distance={"hue": 0.1234, "ink": None}, sample_spread={"hue": 0.2, "ink": 0.01},
                    data_spread={"hue": 0.25, "ink": 0.02}, confident=None, confident_data=None, num_samples=48)


def evaluation():
    run = RunInfo(run="runs/a", model="vlae", plugin="shapes", z_dims=[2, 2], seed=0, step=6, split="test",
                  evaluation_seed=0)
    return Evaluation(num_points=48, elbo=-12.0, recon=-9.0, iwae=iwae(), layers={"z1": layer(), "z2": layer()},
                      bits_per_dim=None, hierarchy=hierarchy(), intervention=intervention(), fidelity=fidelity(),
                      run=run, fade_in={"stage_steps": 2, "steps": 6, "gates": [1.0, 1.0], "fully_on_at": [2, 0]})


@pytest.mark.parametrize("make", [iwae, layer, hierarchy, intervention, fidelity, evaluation])
def test_from_json_of_to_json_is_the_same_result(make):
    result = make()
    data = json.loads(json.dumps(result.to_json()))  # as written to and read from a file
    assert type(result).from_json(data) == result
    assert type(result).from_json(data).to_json() == data


def test_run_info_round_trips_inside_an_evaluation_and_is_absent_for_a_model():
    full = evaluation()
    assert RunInfo.from_json(full.to_json()) == full.run
    assert RunInfo.from_json(Evaluation(num_points=1, elbo=0.0, recon=0.0, iwae=iwae(), layers={}).to_json()) is None


def test_evaluation_json_keeps_its_layout():
    data = evaluation().to_json()
    assert list(data) == ["run", "model", "plugin", "z_dims", "seed", "step", "split", "evaluation_seed",
                          "num_points", "elbo", "recon", "iwae", "layers", "hierarchy", "fade_in", "intervention",
                          "fidelity"]
    iv = data["intervention"]
    assert list(iv) == ["layers", "factors", "kinds", "factor_levels", "intervention", "change", "baseline",
                        "ordering_intervention", "pairs", "seed", "reader", "narrow"]
    assert "reader_refused" not in iv and "bits_per_dim" not in data


def test_an_earlier_evaluation_without_newer_keys_is_read_and_formatted():
    data = evaluation().to_json()
    del data["iwae"]["points"], data["iwae"]["elbo"], data["layers"]["z1"]["activity"], data["run"]
    read = Evaluation.from_json(data)
    assert read.iwae.points == "the first" and read.iwae.elbo is None and read.run.run is None
    assert "vlae on shapes (test, 48 points)" in format_evaluation(read)


def test_missing_numbers_are_none_in_json_and_a_dash_in_text():
    assert json_safe({"a": [float("nan"), 1.23456, (float("inf"), 2)]}, digits=2) == {"a": [None, 1.23, [None, 2]]}
    assert rounded([[float("nan"), 0.123456]]) == [[None, 0.1235]]
    assert dash(None) == "–" and dash(float("nan"), why="undefined") == "– (undefined)" and dash(0.5) == "0.50"
    assert cells([None, 1.0], 6) == "     –  1.00"
