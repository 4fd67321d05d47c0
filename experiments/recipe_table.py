"""Measure the recipe study's runs and tabulate them: mean ± sd over seeds per variant.

For every run folder under ``ROOT`` (``VARIANT-sSEED``) the interventional layer × factor
matrix is measured once (:func:`pyro_vlae.evaluate.intervention_metrics`, 1000 pairs, the
data set's cached factor reader; saved as ``intervention.json`` in the run), with the sample
fidelity (:func:`pyro_vlae.evaluate.sample_fidelity`, 2000 samples against 2000 test images;
``fidelity.json``: TV for hue and shape class, W1 / sd for the others), and read beside
the test ELBO and per-layer KL of ``summary.json``; one table is printed and written to
``ROOT/table.md`` and ``ROOT/table.json``. (``pyro-vlae evaluate RUN`` measures the same
matrix, plus IWAE and the probe.)::

    python experiments/recipe_table.py runs/recipe           # MNIST
    python experiments/recipe_table.py runs/recipe-shapes    # shapes
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from pyro_vlae import VLAE
from pyro_vlae.evaluate import intervention_metrics, sample_fidelity
from pyro_vlae.evaluate.reader import reader_for
from pyro_vlae.plugins import load_data
from pyro_vlae.run_folder import EVALUATION, SUMMARY, load_run

#: columns of the intervention matrix shown per layer (those the run's evaluation has)
SHOWN = ("label", "hue", "size", "x", "y", "shape", "ink", "slant", "width")


@torch.no_grad()
def posterior_spread(model, data, num: int = 1000) -> dict[str, float]:
    """Per layer, the root mean square over ``num`` test points and the layer's units of the
    posterior means μ_l(x) (1 for a code whose aggregate posterior matches the N(0, I) prior;
    the VLAE's guide gives μ_l of x alone); empty for the other models."""
    if not isinstance(model, VLAE):
        return {}
    model.eval()
    x = data.head(num).to(model.device)
    return {site: float(loc.square().mean().sqrt()) for site, (loc, _) in zip(model.latent_sites, model.encode(x))}


def evaluate(run: Path, samples: int) -> dict:
    """``summary.json``'s test ELBO and KL with the run's intervention metrics and sample
    fidelity (each measured once)."""
    summary = json.loads((run / SUMMARY).read_text())["test"]
    results = {"elbo": summary["elbo"], "layers": {name: {"kl": kl} for name, kl in summary["kl"].items()}}
    path, fpath, qpath = run / "intervention.json", run / "fidelity.json", run / "posterior-spread.json"
    if not path.exists() or not fpath.exists() or not qpath.exists():
        loaded = load_run(run)
        plugin = loaded.plugin
        reader = reader_for(plugin, loaded.config.plugin_options)
        if not path.exists():
            metrics = intervention_metrics(loaded.model, reader, factor_levels=plugin.factor_levels, num_pairs=samples)
            path.write_text(json.dumps(metrics.to_json(), indent=1) + "\n")
        if reader is not None and not fpath.exists():
            fidelity = sample_fidelity(loaded.model, load_data(plugin, "test"), reader, num_samples=2000)
            fpath.write_text(json.dumps(fidelity.to_json(), indent=1) + "\n")
        if not qpath.exists():
            qpath.write_text(json.dumps(posterior_spread(loaded.model, load_data(plugin, "test")), indent=1) + "\n")
        print(f"{run}: measured", flush=True)
    results["intervention"] = json.loads(path.read_text())
    if fpath.exists():
        results["fidelity"] = json.loads(fpath.read_text())
    if qpath.exists():
        results["posterior"] = json.loads(qpath.read_text())
    evaluation = run / EVALUATION
    if evaluation.exists():
        results["hierarchy"] = json.loads(evaluation.read_text()).get("hierarchy")
    return results


def row(results: dict) -> dict[str, float]:
    """The numbers of one run: ELBO, per-layer KL, the intervention matrix (the raw change
    rate for a categorical factor such as the class, the normalised one otherwise), orderings."""
    out = {"elbo": results["elbo"]}
    out.update({f"kl {name}": layer["kl"] for name, layer in results["layers"].items()})
    out.update({f"rms μ {name}": v for name, v in (results.get("posterior") or {}).items()})
    fidelity = results.get("fidelity") or {}
    out.update({f"fidelity {k}": v for k, v in fidelity.get("distance", {}).items() if k in SHOWN})
    if fidelity.get("confident") is not None:
        out["fidelity confident"] = fidelity["confident"]
    iv = results.get("intervention") or {}
    for i, layer in enumerate(iv.get("layers", [])):
        for k, factor in enumerate(iv["factors"]):
            if factor not in SHOWN:
                continue
            raw = iv["kinds"].get(factor) == "categorical"
            value = (iv["change"] if raw else iv["intervention"])[i][k]
            out[f"{layer} {factor}{' (rate)' if raw else ''}"] = np.nan if value is None else value
    if "ordering_intervention" in iv:
        out["ordering (intervention)"] = iv["ordering_intervention"]
    if results.get("hierarchy"):
        out["ordering (probe)"] = results["hierarchy"]["ordering_probe"]
    return {k: np.nan if v is None else v for k, v in out.items()}  # e.g. no ordering for one layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--intervention-samples", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(format="%(message)s")  # the library's messages as they are, on stderr
    logging.getLogger("pyro_vlae").setLevel(logging.INFO)
    torch.set_num_threads(1)
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for run in sorted(args.root.iterdir()):
        match = re.fullmatch(r"(.+)-s(\d+)", run.name)
        if match and (run / SUMMARY).exists():
            groups[match[1]].append(row(evaluate(run, args.intervention_samples)))
    columns = list(dict.fromkeys(c for rows in groups.values() for r in rows for c in r))
    columns = [c for c in columns if any(np.isfinite(r.get(c, np.nan)) for rows in groups.values() for r in rows)]
    lines = ["| variant | seeds | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    table = {}
    for name, rows in groups.items():
        cells, table[name] = [], {}
        for c in columns:
            values = np.array([r.get(c, np.nan) for r in rows], dtype=float)
            finite = values[np.isfinite(values)]
            mean, sd = (finite.mean(), finite.std()) if len(finite) else (np.nan, np.nan)
            table[name][c] = {"mean": mean, "sd": sd, "values": values.tolist()}
            cells.append(f"{mean:.2f} ± {sd:.2f}" if len(rows) > 1 else f"{mean:.2f}")
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    (args.root / "table.md").write_text(text + "\n")
    (args.root / "table.json").write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
