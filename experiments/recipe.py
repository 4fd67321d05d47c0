"""The recipe study: which training choices make the VLAE's layers separate?

Trains every variant below for each seed with ``pyro-vlae fit`` (one thread each) into
``runs/recipe/VARIANT-sSEED`` (the ``mnist`` study) or ``runs/recipe-STUDY/VARIANT-sSEED``; runs already
finished are skipped and interrupted ones resumed, so the script can be re-run to extend the
study. Evaluate the runs with ``experiments/recipe_table.py``.

    python experiments/recipe.py --data-dir DIR --variants base,fade --seeds 0,1,2
    python experiments/recipe.py --study mnist-default --data-dir DIR --variants vlae,hvae,lvae,vae
    python experiments/recipe.py --study shapes --variants base,fade,hvae,lvae,vae
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from pyro_vlae.run_folder import CHECKPOINT, SUMMARY

#: study name -> (the budget shared by its variants, {variant: (extra options, steps)}).
#: ``mnist``: width 0.25 of the authors' small network, Adam 1e-3, batch 64, σ = 0.25 (CPU);
#: ``mnist-default``: MNIST's recommended configuration, i.e. what ``pyro-vlae fit --plugin
#: mnist`` runs (width 1, Adam 2e-4, batch 100, σ = 0.25, fade-in 3000, 20,000 steps; a GPU
#: study), and the VLAE at 60,000 steps; ``shapes``: the defaults of ``pyro-vlae fit``.
STUDIES: dict[str, tuple[list[str], dict[str, tuple[list[str], int]]]] = {
    "mnist": (
        ["--width", "0.25", "--batch-size", "64", "--lr", "1e-3", "--warmup-steps", "2000", "-L", "scale=0.25"],
        {
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
        },
    ),
    "mnist-default": (
        [],
        {
            "vlae": ([], 20000),
            "vlae-nofade": (["--fade-in", "0"], 20000),
            "hvae": (["--model", "hvae"], 20000),
            "lvae": (["--model", "lvae"], 20000),
            "vae": (["--model", "vae"], 20000),
            "vlae-60k": (["--fade-in", "9000"], 60000),
            # matched fit: the Markov chains' z1 as wide as the VLAE's whole code
            "hvae-wide": (["--model", "hvae", "--z-dims", "6,2,2"], 20000),
            "lvae-wide": (["--model", "lvae", "--z-dims", "6,2,2"], 20000),
        },
    ),
    "shapes": (
        [],
        {
            "base": (["--fade-in", "0"], 2000),
            "fade": ([], 2000),
            "fade-long": (["--fade-in", "2500"], 10000),
            "fade200": (["--fade-in", "200"], 2000),
            "fade-kl-top4": (["--kl-weights", "1,1,4"], 2000),
            "hvae": (["--model", "hvae"], 2000),
            "lvae": (["--model", "lvae"], 2000),
            "vae": (["--model", "vae"], 2000),
        },
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=sorted(STUDIES), default="mnist")
    parser.add_argument("--data-dir", help="folder holding the MNIST IDX files")
    parser.add_argument("--variants", default="base,fade", help="comma-separated names of the study's variants")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--device", help="passed to `pyro-vlae fit --device` [default: its own]")
    parser.add_argument("--out", help="folder of the runs [default: runs/recipe-STUDY, runs/recipe for mnist]")
    parser.add_argument("--steps", type=int, help="train every variant this long instead (a quick try of the study)")
    args = parser.parse_args()
    budget, variants = STUDIES[args.study]
    unknown = sorted(set(args.variants.split(",")) - set(variants))
    if unknown:
        parser.error(f"unknown variants {unknown} of study {args.study}; it has {', '.join(variants)}")
    mnist = args.study.startswith("mnist")
    if mnist and not args.data_dir:
        parser.error("--data-dir is required for MNIST")
    data = ["--plugin", "mnist", "--data-dir", args.data_dir] if mnist else ["--plugin", "shapes"]
    data += ["--device", args.device] if args.device else []
    root = Path(args.out or ("runs/recipe" if args.study == "mnist" else f"runs/recipe-{args.study}"))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for seed in args.seeds.split(","):
        for name in args.variants.split(","):
            extra, steps = variants[name]
            steps = args.steps or steps
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
                sys.executable, "-m", "pyro_vlae.cli", "fit", *data, *budget, *extra,
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
