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
import resource
import subprocess
import sys
import time
from pathlib import Path

from pyro_vlae.run_folder import CHECKPOINT, SUMMARY

#: study name -> (the budget shared by its variants, {variant: (extra options, steps)}).
#: ``mnist``: width 0.25 of the authors' small network, Adam 1e-3, batch 64, σ = 0.25 (CPU);
#: ``mnist-default``: MNIST's recommended configuration, i.e. what ``pyro-vlae fit --plugin
#: mnist`` runs (width 1, Adam 2e-4, batch 100, σ = 0.25, fade-in 3000, 20,000 steps; a GPU
#: study), and the VLAE at 60,000 steps; ``shapes``: the earlier defaults of ``pyro-vlae fit``
#: (z = 3-3-3, width 0.5, σ = 0.1, warm-up 1000, fade-in 500, 2000 steps); ``shapes-screen``: short
#: runs (1200 steps, width 0.25, z = 3-3-3) screening the likelihood's scale σ, the warm-up and ``--z-norm``,
#: and σ = 0.2 at the full budget; ``shapes-default``: what ``pyro-vlae fit`` runs now;
#: ``mnist-matched``: the four models at about the same fit (CPU);
#: ``shapes-levers``: single levers on top of its earlier z = 3-3-3 (``default``; the levers that
#: leave z alone give it too) at its full budget
#: (3000 steps); ``z363`` became the default; ``shapes-levers2``: single levers on top of it.
STUDIES: dict[str, tuple[list[str], dict[str, tuple[list[str], int]]]] = {
    "mnist": (
        ["--width", "0.25", "--batch-size", "64", "--lr", "1e-3", "--warmup-steps", "2000", "-L", "scale=0.25"],
        {
            # no fade-in: measured before MNIST recommended one
            "base": (["--fade-in", "0"], 6000),
            "fade": (["--fade-in", "1500"], 6000),
            "gated-mlp": (["--combine", "gated", "--heads", "mlp", "--fade-in", "0"], 6000),
            "gated-mlp-fade": (["--combine", "gated", "--heads", "mlp", "--fade-in", "1500"], 6000),
            "fade3000": (["--fade-in", "3000"], 9000),
            "fade-kl4": (["--fade-in", "1500", "--kl-weights", "4,1,1"], 6000),
            "base-long": (["--fade-in", "0"], 15000),
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
        ["--z-dims", "3,3,3", "--width", "0.5", "--warmup-steps", "1000", "-L", "scale=0.1"],
        {
            "base": (["--fade-in", "0"], 2000),
            "fade": (["--fade-in", "500"], 2000),
            "fade-long": (["--fade-in", "2500"], 10000),
            "fade200": (["--fade-in", "200"], 2000),
            "fade-kl-top4": (["--fade-in", "500", "--kl-weights", "1,1,4"], 2000),
            "hvae": (["--model", "hvae"], 2000),
            "lvae": (["--model", "lvae"], 2000),
            "vae": (["--model", "vae"], 2000),
        },
    ),
    "shapes-screen": (
        ["--z-dims", "3,3,3", "--width", "0.25", "--warmup-steps", "600", "--fade-in", "300"],
        {
            "sd10": (["-L", "scale=0.1"], 1200),
            "sd20": (["-L", "scale=0.2"], 1200),
            "sd30": (["-L", "scale=0.3"], 1200),
            "sd20-w200": (["-L", "scale=0.2", "--warmup-steps", "200"], 1200),
            "sd20-nobn": (["-L", "scale=0.2", "--z-norm", "none"], 1200),
            "sd20-long": (["-L", "scale=0.2", "--warmup-steps", "1000", "--fade-in", "500"], 3000),
        },
    ),
    "shapes-default": ([], {"vlae": ([], 3000)}),
    # the hierarchy at matched fit (CPU budget of the ``mnist`` study): the Markov chains' z1 as
    # wide as the VLAE's whole code, the flat VAE with the same total
    "mnist-matched": (
        ["--width", "0.25", "--batch-size", "64", "--lr", "1e-3", "--warmup-steps", "2000", "-L", "scale=0.25"],
        {
            "vlae": (["--fade-in", "1500"], 6000),
            "hvae-wide": (["--model", "hvae", "--z-dims", "6,2,2"], 6000),
            "lvae-wide": (["--model", "lvae", "--z-dims", "6,2,2"], 6000),
            "vae": (["--model", "vae", "--z-dims", "6"], 6000),
            # z1 twice as wide again: the chains' fit against their width
            "hvae-wider": (["--model", "hvae", "--z-dims", "12,2,2"], 6000),
            "lvae-wider": (["--model", "lvae", "--z-dims", "12,2,2"], 6000),
            # the VLAE with as many latent dimensions as the wider chains (16)
            "vlae-wider": (["--fade-in", "1500", "--z-dims", "6,6,4"], 6000),
        },
    ),
    # levers on top of what ``pyro-vlae fit`` runs, at its full budget
    "shapes-levers": (
        [],
        {
            "default": (["--z-dims", "3,3,3"], 3000),  # the default until z363 measured better
            "nobn": (["--z-dims", "3,3,3", "--z-norm", "none"], 3000),
            # one layer per level of factors, each as wide as its factors need: hue (circular, 2),
            # size and position (3), shape class (5 classes, 2)
            "z232": (["--z-dims", "2,3,2"], 3000),
            "z332": (["--z-dims", "3,3,2"], 3000),
            "nofade": (["--z-dims", "3,3,3", "--fade-in", "0"], 3000),
            "lr5e-4": (["--z-dims", "3,3,3", "--lr", "5e-4"], 3000),
            "z363": (["--z-dims", "3,6,3"], 3000),
        },
    ),
    # levers on top of the z = 3-6-3 default (``default``): a longer run in the same four
    # minutes, the learning rate, the fade-in's share, the warm-up, a narrower top layer and a
    # learned σ, four layers, a longer warm-up and z1's information at half price
    "shapes-levers2": (
        [],
        {
            "default": ([], 3000),
            "steps4500": ([], 4500),
            "lr2e-3": (["--lr", "2e-3"], 3000),
            "fade0.5": (["--fade-in", "0.5"], 3000),
            "warm500": (["--warmup-steps", "500"], 3000),
            "z362": (["--z-dims", "3,6,2"], 3000),
            "sigma-global": (["-L", "variance=global"], 3000),
            # four layers, as the authors' SVHN network: z1 joins at 16×16, z2 at 8×8, z3 at 4×4
            "z3363": (["--z-dims", "3,3,6,3"], 3000),
            "warm2000": (["--warmup-steps", "2000"], 3000),
            "kl-z1-half": (["--kl-weights", "0.5,1,1"], 3000),
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
            root.mkdir(parents=True, exist_ok=True)
            lock_path = root / f".{out.name}.recipe-lock"  # beside the run: fit refuses files it did not write
            try:  # another copy of this script may be training the same run
                lock = os.open(lock_path, os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                print(f"{out}: taken by another process, skipped", flush=True)
                continue
            resume = ["--resume"] if (out / CHECKPOINT).exists() else []
            command = [
                sys.executable, "-m", "pyro_vlae.cli", "fit", *data, *budget, *extra,
                "--steps", str(steps), "--seed", seed, "--out", str(out), "--no-progress", *resume,
            ]
            print(" ".join(command[1:]), flush=True)
            t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                subprocess.run(command, env=env, check=True)
            finally:
                os.close(lock)
                os.unlink(lock_path)
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
            print(f"{out}: {time.perf_counter() - t0:.0f} s wall, {cpu:.0f} s CPU", flush=True)


if __name__ == "__main__":
    main()
