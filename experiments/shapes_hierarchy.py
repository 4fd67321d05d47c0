"""Does a model put the `shapes` factors into layers that match their level of abstraction?

Trains every model in ``--models`` with every seed in ``--seeds`` on the embedded ``shapes``
data set with one shared budget, evaluates each run (ELBO, IWAE-K, per-layer KL, active units,
layer × factor matrix, ordering score) and writes the comparison table::

    python experiments/shapes_hierarchy.py --out runs/shapes-hierarchy

Runs that already finished (or were already evaluated) are skipped, so the script can be
re-run after an interruption. ``--jobs`` runs that many fits side by side, one thread each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyro_vlae.run_folder import CHECKPOINT, EVALUATION, SUMMARY

#: the budget shared by every model (options of `pyro-vlae fit`); the VLAE without the fade-in
#: that ``shapes`` recommends now, as docs/hierarchy.md measured it
BUDGET = ["--plugin", "shapes", "--z-dims", "3,3,3", "--width", "0.25", "--steps", "500",
          "--warmup-steps", "250", "--batch-size", "64", "--lr", "1e-3", "-L", "scale=0.1", "--fade-in", "0"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyro_vlae.cli", *args]


def finished(run: Path) -> bool:
    return (run / SUMMARY).exists()


def execute(command: list[str], log: Path) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "a") as f:
        f.write("$ " + " ".join(command) + "\n")
        f.flush()
        return subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env=env).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/shapes-hierarchy"))
    parser.add_argument("--models", nargs="+", default=["vlae", "hvae", "lvae", "vae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=3, help="fits and evaluations run side by side")
    parser.add_argument("--iwae-samples", type=int, default=1000)
    parser.add_argument("--iwae-points", type=int, default=20, help="test points of the IWAE estimate")
    parser.add_argument("--fit-option", action="append", default=[], help="extra `pyro-vlae fit` option")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [(m, s, args.out / f"{m}-seed{s}") for m, s in itertools.product(args.models, args.seeds)]

    def fit(job):
        model, seed, run = job
        if finished(run):
            return 0
        resume = ["--resume"] if (run / CHECKPOINT).exists() else [*BUDGET, *args.fit_option]
        command = cli("fit", "--model", model, "--seed", str(seed), "--out", str(run), "--no-progress", *resume)
        return execute(command, args.out / f"{run.name}.log")

    def evaluate(job):
        _, _, run = job
        if not finished(run) or (run / EVALUATION).exists():
            return 0
        command = cli("evaluate", str(run), "--iwae-samples", str(args.iwae_samples),
                      "--iwae-points", str(args.iwae_points), "--no-progress")
        return execute(command, args.out / f"{run.name}.log")

    with ThreadPoolExecutor(args.jobs) as pool:
        failed = [r for r, code in zip(runs, pool.map(fit, runs)) if code]
        failed += [r for r, code in zip(runs, pool.map(evaluate, runs)) if code]
    for _, _, run in failed:
        print(f"failed: {run} (see {args.out / (run.name + '.log')})", file=sys.stderr)
    done = [str(run) for _, _, run in runs if (run / EVALUATION).exists()]
    if done:
        subprocess.run(cli("compare", *done, "--out", str(args.out / "comparison")), check=True)
    (args.out / "experiment.json").write_text(json.dumps({"budget": BUDGET + args.fit_option,
                                                          "models": args.models, "seeds": args.seeds,
                                                          "iwae_samples": args.iwae_samples,
                                                          "iwae_points": args.iwae_points}, indent=2) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
