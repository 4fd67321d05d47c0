"""Sample fidelity of run folders, without the rest of ``pyro-vlae evaluate``.

For each run folder: N ancestral samples against N images of its test split, read by the data
set's cached factor reader and by the image statistics (``pyro_vlae.evaluate.sample_fidelity``,
defined in ``docs/hierarchy.md``). Prints one table per run and, with ``--out FILE``, writes
every run's numbers to FILE as JSON (``{run: fidelity}``).

    python experiments/fidelity.py runs/shapes-s0 runs/shapes-s1 --samples 2000 --out fidelity.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pyro_vlae.evaluate import Fidelity, ReaderError, reader_for, sample_fidelity
from pyro_vlae.evaluate.reader import READER_STEPS
from pyro_vlae.evaluate.tables import format_fidelity
from pyro_vlae.plugins import load_data
from pyro_vlae.run_folder import load_run


def run_fidelity(path: Path, samples: int, seed: int, reader_steps: int, device: str) -> Fidelity:
    """The fidelity of one run folder;
    a refused reader is left out, as ``pyro-vlae evaluate`` does."""
    run = load_run(path, device=device)
    data = load_data(run.plugin, "test" if "test" in run.plugin.splits else "train")
    reader = reader_for(run.plugin, run.config.plugin_options, steps=reader_steps, device=device)
    try:
        if reader is not None:
            reader.check()
    except ReaderError as err:
        print(f"{path}: {err}; image statistics only")
        reader = None
    return sample_fidelity(run.model, data, reader, num_samples=samples, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders written by pyro-vlae fit")
    parser.add_argument("--samples", type=int, default=2000, help="samples, and test images, per run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples' noise and of the test subset")
    parser.add_argument("--reader-steps", type=int, default=READER_STEPS, help="training steps of the factor reader")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="write every run's numbers to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(format="%(message)s")  # the library's messages as they are, on stderr
    logging.getLogger("pyro_vlae").setLevel(logging.INFO)
    results = {}
    for path in args.runs:
        fidelity = run_fidelity(path, args.samples, args.seed, args.reader_steps, args.device)
        results[str(path)] = fidelity.to_json()
        print(path)
        print("\n".join(format_fidelity(fidelity)))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
