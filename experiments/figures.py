"""The paper's figures made by the library, for the reproduction page (docs/reproduction.md).

For every run folder given, writes its diagnostics with the command line (``pyro-vlae
sample``: per-layer variation, Figs. 3, 6–7; ``traverse``: Fig. 5; ``gibbs``: Prop. 1 /
Fig. 2) and copies them, with the intervention and probe matrices of ``pyro-vlae evaluate``
(run ``experiments/recipe_table.py`` first), into ``--out`` as ``NAME-PICTURE.png``::

    python experiments/figures.py runs/recipe/{fade,base,hvae,lvae,vae}-s0 --out docs/figures/mnist
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from pyro_vlae.run_folder import GIBBS, HIERARCHY, INTERVENTION, LAYERS, TRAVERSALS

#: run-folder pictures copied to the page: (command and its options, {picture it writes: name on the page})
DIAGNOSTICS = [
    (["sample"], {LAYERS: "sample-layers.png"}),
    (["traverse"], {TRAVERSALS: TRAVERSALS}),
    (["gibbs", "--steps", "20"], {GIBBS: GIBBS}),
]
#: pictures of `pyro-vlae evaluate`
EVALUATION = [INTERVENTION, HIERARCHY]


def plot_intervention(run: Path) -> None:
    """``intervention.png`` from the ``intervention.json`` of ``experiments/recipe_table.py``."""
    from pyro_vlae.evaluate import InterventionMatrix
    from pyro_vlae.plotting import plot_matrix

    if (run / "intervention.json").exists() and not (run / INTERVENTION).exists():
        matrix = InterventionMatrix.from_json(json.loads((run / "intervention.json").read_text()))
        plot_matrix(matrix.heat_map(), run / INTERVENTION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for run in args.runs:
        name = run.name.rsplit("-s", 1)[0]
        for command, pictures in DIAGNOSTICS:
            subprocess.run([sys.executable, "-m", "pyro_vlae", *command, str(run)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            for picture, page_name in pictures.items():
                shutil.copyfile(run / picture, args.out / f"{name}-{page_name}")
        plot_intervention(run)
        for picture in EVALUATION:
            if (run / picture).exists():
                shutil.copyfile(run / picture, args.out / f"{name}-{picture}")
        print(f"{run}: pictures in {args.out}", flush=True)


if __name__ == "__main__":
    main()
