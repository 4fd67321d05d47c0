"""The recipe study: which training choices make the VLAE's layers separate?

Trains every variant below for each seed with ``pyro-vlae fit`` (one thread each) into
``runs/recipe/VARIANT-sSEED`` (MNIST) or ``runs/recipe-shapes/VARIANT-sSEED``; runs already
finished are skipped and interrupted ones resumed, so the script can be re-run to extend the
study. Evaluate the runs with ``experiments/recipe_table.py``.

    python experiments/mnist_recipe.py --data-dir DIR --variants base,fade --seeds 0,1,2
    python experiments/mnist_recipe.py --dataset shapes --variants base,fade --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from pyro_vlae.run_folder import CHECKPOINT, SUMMARY

#: the budget shared by every variant of a data set. MNIST: width 0.25 of the authors' small
#: network, Adam 1e-3, batch 64, the data set's σ = 0.25; shapes: the defaults of `pyro-vlae fit`
BUDGETS = {
    "mnist": ["--width", "0.25", "--batch-size", "64", "--lr", "1e-3", "--warmup-steps", "2000", "-L", "scale=0.25"],
    "shapes": [],
}

#: variant name -> (extra options, steps); shapes runs take the data set's 2000 steps
SHAPES_VARIANTS: dict[str, tuple[list[str], int]] = {
    "base": ([], 2000),
    "fade": (["--fade-in", "500"], 2000),
    "hvae": (["--model", "hvae"], 2000),
    "lvae": (["--model", "lvae"], 2000),
    "vae": (["--model", "vae"], 2000),
}

#: variant name -> (extra options, steps)
VARIANTS: dict[str, tuple[list[str], int]] = {
    "base": ([], 6000),
    "fade": (["--fade-in", "1500"], 6000),
    "gated-mlp": (["--combine", "gated", "--heads", "mlp"], 6000),
    "gated-mlp-fade": (["--combine", "gated", "--heads", "mlp", "--fade-in", "1500"], 6000),
    "fade3000": (["--fade-in", "3000"], 9000),
    "fade-kl4": (["--fade-in", "1500", "--kl-weights", "4,1,1"], 6000),
    "base-long": ([], 15000),
    "hvae": (["--model", "hvae"], 6000),
    "lvae": (["--model", "lvae"], 6000),
    "vae": (["--model", "vae"], 6000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(BUDGETS), default="mnist")
    parser.add_argument("--data-dir", help="folder holding the MNIST IDX files")
    parser.add_argument("--variants", default="base,fade", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", help="folder of the runs [default: runs/recipe, or runs/recipe-shapes]")
    args = parser.parse_args()
    mnist = args.dataset == "mnist"
    if mnist and not args.data_dir:
        parser.error("--data-dir is required for MNIST")
    variants = VARIANTS if mnist else SHAPES_VARIANTS
    data = ["--plugin", "mnist", "--data-dir", args.data_dir] if mnist else ["--plugin", "shapes"]
    root = Path(args.out or ("runs/recipe" if mnist else "runs/recipe-shapes"))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for seed in args.seeds.split(","):
        for name in args.variants.split(","):
            extra, steps = variants[name]
            out = root / f"{name}-s{seed}"
            if (out / SUMMARY).exists():
                continue
            out.mkdir(parents=True, exist_ok=True)
            try:  # another copy of this script may be training the same run
                lock = os.open(out / ".recipe-lock", os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                print(f"{out}: taken by another process, skipped", flush=True)
                continue
            resume = ["--resume"] if (out / CHECKPOINT).exists() else []
            command = [
                sys.executable, "-m", "pyro_vlae.cli", "fit", *data, *BUDGETS[args.dataset], *extra,
                "--steps", str(steps), "--seed", seed, "--out", str(out), "--no-progress", *resume,
            ]
            print(" ".join(command[1:]), flush=True)
            t0 = time.perf_counter()
            try:
                subprocess.run(command, env=env, check=True)
            finally:
                os.close(lock)
                os.unlink(out / ".recipe-lock")
            print(f"{out}: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
