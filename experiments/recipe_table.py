"""Evaluate the recipe study's runs and tabulate them: mean ± sd over seeds per variant.

Every run folder under ``ROOT`` (``VARIANT-sSEED``) is evaluated once with ``pyro-vlae
evaluate`` (ELBO, IWAE, per-layer KL, the layer × factor probe and the interventional
matrix; ``evaluation.json``), then one table is printed and written to ``ROOT/table.md``
and ``ROOT/table.json``::

    python experiments/recipe_table.py runs/recipe           # MNIST
    python experiments/recipe_table.py runs/recipe-shapes    # shapes
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

#: columns of the intervention matrix shown per layer (those the run's evaluation has)
SHOWN = ("label", "hue", "size", "x", "y", "shape", "ink", "slant", "width")


def evaluate(run: Path, samples: int) -> dict:
    path = run / "evaluation.json"
    if not path.exists():
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        command = [sys.executable, "-m", "pyro_vlae.cli", "evaluate", str(run), "--iwae-samples", "100",
                   "--iwae-points", "500", "--intervention-samples", str(samples), "--no-progress"]
        print(" ".join(command[1:]), flush=True)
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(path.read_text())


def row(results: dict) -> dict[str, float]:
    """The numbers of one run: ELBO, per-layer KL, the intervention matrix (the raw change
    rate for a categorical factor such as the class, the normalised one otherwise), orderings."""
    out = {"elbo": results["elbo"]}
    out.update({f"kl {name}": layer["kl"] for name, layer in results["layers"].items()})
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
    if "hierarchy" in results:
        out["ordering (probe)"] = results["hierarchy"]["ordering_probe"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--intervention-samples", type=int, default=1000)
    args = parser.parse_args()
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for run in sorted(args.root.iterdir()):
        match = re.fullmatch(r"(.+)-s(\d+)", run.name)
        if match and (run / "summary.json").exists():
            groups[match[1]].append(row(evaluate(run, args.intervention_samples)))
    columns = list(dict.fromkeys(c for rows in groups.values() for r in rows for c in r))
    lines = ["| variant | seeds | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    table = {}
    for name, rows in groups.items():
        cells, table[name] = [], {}
        for c in columns:
            values = np.array([r.get(c, np.nan) for r in rows], dtype=float)
            mean, sd = np.nanmean(values), np.nanstd(values)
            table[name][c] = {"mean": mean, "sd": sd, "values": values.tolist()}
            cells.append(f"{mean:.2f} ± {sd:.2f}" if len(rows) > 1 else f"{mean:.2f}")
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    (args.root / "table.md").write_text(text + "\n")
    (args.root / "table.json").write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
