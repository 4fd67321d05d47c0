"""The published likelihoods on dynamically binarized MNIST: each model at its own recipe.

Trains each model with ``pyro-vlae fit --plugin binarized-mnist --model MODEL`` (its recipe:
``BinarizedMNIST.recipes``, the Ladder VAE paper's setting for the HVAE, LVAE and VAE) for
the given number of epochs, in chunks of ``--eval-every`` epochs (``--resume``), recording
the test ELBO after each chunk in ``curve.csv`` (the learning curve); the KL warm-up is the
recipe's share of the whole budget (200 of 2000 epochs: the first tenth). Then scores each
run, once trained, with ``pyro-vlae evaluate`` (IWAE_K on a random subset of test points, the
published protocol being K = 5000 on all 10,000). Runs and chunks already done are skipped,
so the script can be re-run to extend a study.

    python experiments/published_mnist.py --data-dir MNIST_DIR --models lvae,hvae,vae --epochs 2000
    python experiments/published_mnist.py --data-dir MNIST_DIR --models lvae --epochs 20 --eval-every 4 \\
        --iwae-samples 5000 --iwae-points 200
    python experiments/published_mnist.py --out runs/published-mnist --table   # the study's table

``--epochs`` takes one count for all models or one per model (``20,16,16``); ``recipe``
trains a model for its recipe's own budget (the VLAE's: 20,000 steps).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pyro_vlae.config import RunConfig
from pyro_vlae.data.mnist import BinarizedMNIST
from pyro_vlae.run_folder import CHECKPOINT, EVALUATION, SUMMARY

#: the published figures (log-likelihood bounds on the test set, nats); Burda et al.'s models
#: differ (50-d latent, 200-200 tanh MLPs, 3280 epochs) and serve as a second anchor
PUBLISHED = {
    "lvae": "-81.74 (Sønderby et al. 2016, 5 layers, IWAE-5000)",
    "hvae": "Sønderby et al. 2016 report a 5-layer VAE; its figure is not quoted here (not verified)",
    "vae": "-86.76 (Burda et al. 2016, VAE 1 layer, k = 5000)",
    "vlae": "none published on binarized MNIST",
}
CURVE_FIELDS = ["run", "epochs", "step", "test_elbo", "test_recon", "kl", "chunk_seconds"]


def budget(model: str, epochs: float | None) -> RunConfig:
    """The resolved configuration of ``model``'s recipe at ``epochs`` epochs (steps, warm-up);
    ``None``: at the recipe's own budget."""
    plugin = BinarizedMNIST(download=False)
    config = RunConfig(plugin=plugin.name, model=model, epochs=epochs)
    return config.resolve(plugin.recommended_for(model), plugin.default_likelihood, 60000, plugin.value_range)


def done_steps(curve: Path, run: str) -> set[int]:
    if not curve.exists():
        return set()
    with curve.open() as f:
        return {int(row["step"]) for row in csv.DictReader(f) if row["run"] == run}


def record(curve: Path, epochs: float, out: Path) -> None:
    summary = json.loads((out / SUMMARY).read_text())
    test = summary["test"]
    row = {
        "run": out.name, "epochs": epochs, "step": summary["steps"],
        "test_elbo": f"{test['elbo']:.3f}", "test_recon": f"{test['recon']:.3f}",
        "kl": "/".join(f"{k:.2f}" for k in test["kl"].values()), "chunk_seconds": summary["train_seconds"],
    }
    new = not curve.exists()
    with curve.open("a", newline="") as f:
        writer = csv.DictWriter(f, CURVE_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(f"{out.name} epoch {epochs:g}: test ELBO {test['elbo']:.2f}", flush=True)


def train(
    cli: list[str], data: list[str], model: str, epochs: float | None, every: float, root: Path, seed: str
) -> Path:
    """Train ``model`` to ``epochs`` epochs (``None``: its recipe's budget) in chunks of
    ``every``, recording the curve."""
    out, curve = root / f"{model}-s{seed}", root / "curve.csv"
    full = budget(model, epochs)
    epochs = epochs or full.steps * full.batch_size / 60000
    per_epoch = full.steps / epochs
    marks = [min(epochs, every * (i + 1)) for i in range(int(-(-epochs // every)))]
    done = done_steps(curve, out.name)
    for mark in marks:
        steps = min(full.steps, round(mark * per_epoch))
        if steps in done:
            continue
        if (out / CHECKPOINT).exists():
            extra = ["--resume"]
        else:
            extra = [*data, "--model", model, "--warmup-steps", str(full.warmup_steps), "--seed", seed]
            # the schedules of the whole budget, not of the first chunk (a fade-in fraction
            # would otherwise be resolved against the chunk's steps)
            extra += ["--fade-in", str(full.fade_in)] if full.fade_in else []
        command = [*cli, "fit", *extra, "--steps", str(steps), "--out", str(out), "--no-progress"]
        print(" ".join(command[1:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(command, check=True)
        print(f"{out}: {time.perf_counter() - t0:.0f} s", flush=True)
        record(curve, mark, out)
    return out


def score(cli: list[str], model: str, out: Path, samples: int, points: int, device: list[str]) -> None:
    """IWAE_K of run ``out`` on ``points`` random test points (``pyro-vlae evaluate``), saved
    beside the run as ``RUN-iwaeK-POINTS.json``."""
    target = out.parent / f"{out.name}-iwae{samples}-{points}.json"
    if target.exists():
        return
    command = [
        *cli, "evaluate", str(out), "--iwae-samples", str(samples), "--iwae-points", str(points),
        "--no-intervention", "--no-progress", *device,
    ]
    print(" ".join(command[1:]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    (out / EVALUATION).replace(target)
    print(f"{out.name}: evaluated in {time.perf_counter() - t0:.0f} s; published: {PUBLISHED[model]}", flush=True)


def table(root: Path) -> str:
    """The study as markdown: each run's test-ELBO curve, then its IWAE bounds beside the
    published figure (also written to ``ROOT/table.md``)."""
    with (root / "curve.csv").open() as f:
        rows = list(csv.DictReader(f))
    lines = ["| run | epochs | step | test ELBO (10,000 images) | recon | KL per layer |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['run']} | {float(r['epochs']):g} | {r['step']} | {float(r['test_elbo']):.2f} | "
        f"{float(r['test_recon']):.2f} | {r['kl']} |"
        for r in rows
    ]
    lines += ["", "| run | bound | points | value | ELBO, same points | published |", "|---|---|---|---|---|---|"]
    for path in sorted(root.glob("*-iwae*.json")):
        iwae = json.loads(path.read_text())["iwae"]
        run = path.name.split("-iwae")[0]
        lines.append(
            f"| {run} | IWAE-{iwae['samples']} | {iwae['num_points']} ({iwae['points']}) | {iwae['value']:.2f} | "
            f"{iwae['elbo']:.2f} | {PUBLISHED[run.rsplit('-s', 1)[0]]} |"
        )
    text = "\n".join(lines) + "\n"
    (root / "table.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding the MNIST IDX files")
    parser.add_argument("--models", default="lvae,hvae,vae")
    parser.add_argument("--epochs", default="2000", help="one count, or one per model; `recipe`: the recipe's")
    parser.add_argument("--eval-every", type=float, default=100, help="epochs between test ELBOs")
    parser.add_argument("--iwae-samples", type=int, default=5000)
    parser.add_argument("--iwae-points", type=int, default=10000, help="random test points scored by IWAE")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one run per model and seed")
    parser.add_argument("--device", help="passed to `pyro-vlae fit/evaluate --device` [default: theirs]")
    parser.add_argument("--out", default="runs/published-mnist", help="folder of the runs and curve.csv")
    parser.add_argument("--table", action="store_true", help="only print the table of the runs in --out")
    args = parser.parse_args()
    if args.table:
        print(table(Path(args.out)), end="")
        return
    if not args.data_dir:
        parser.error("--data-dir is required to train")
    models = args.models.split(",")
    counts = [None if e == "recipe" else float(e) for e in args.epochs.split(",")]
    if len(counts) not in (1, len(models)):
        parser.error(f"--epochs needs one count or one per model ({len(models)})")
    counts = counts * len(models) if len(counts) == 1 else counts
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "pyro_vlae.cli"]
    device = ["--device", args.device] if args.device else []
    data = ["--plugin", "binarized-mnist", "--data-dir", args.data_dir, *device]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for seed in args.seeds.split(","):
        for model, epochs in zip(models, counts):
            out = train(cli, data, model, epochs, args.eval_every, root, seed)
            score(cli, model, out, args.iwae_samples, args.iwae_points, device)
    print(table(root), end="")


if __name__ == "__main__":
    main()
