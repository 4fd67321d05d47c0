"""Does compiling the training step pay on the CPU for the default ``pyro-vlae fit``?

    OMP_NUM_THREADS=1 python benchmarks/compile_cache.py            # 100 timed steps per kind
    OMP_NUM_THREADS=1 python benchmarks/compile_cache.py --steps 30

Builds the model and trainer exactly as ``pyro-vlae fit --no-compile`` and ``--compile`` do
(the ``shapes`` data set with its recommended options: the VLAE at width 0.25, batch 64), in
three fresh processes, each with one thread:

1. ``eager``: the eager step;
2. ``compiled, cold``: the compiled step, Inductor's caches in a new empty folder
   (``TORCHINDUCTOR_CACHE_DIR``);
3. ``compiled, warm``: the compiled step again, in a new process, with the same folder.

Times are the process's CPU time including its finished children (``getrusage``: Inductor
compiles its C++ in subprocesses; ``TORCHINDUCTOR_COMPILE_THREADS=1`` keeps its compile
workers from outliving the measurement), and wall-clock time. ``first step`` is the first
step (tracing and compiling for the compiled step); ``per step`` the mean of the following
``--steps`` after two more untimed ones. ``break-even`` is the number of steps after which
the compiled run has spent less CPU time than the eager one. Inductor's cache counters say
whether the warm process found the compiled graph on disk. The table is printed and written
to ``benchmarks/results/compile-cache.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIT_STEPS = 3000  # the default run's steps on the shapes data set


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def build_trainer(out: Path, compile: bool):
    """The trainer of ``pyro-vlae fit --compile`` (or ``--no-compile``) on ``shapes``."""
    from pyro_vlae import run
    from pyro_vlae.config import RunConfig

    setup = run.resolve(RunConfig(device="cpu", compile=compile), out, False, None)
    setup.lock.release()
    return setup, run.build(setup)


def measure(kind: str, steps: int) -> dict:
    """In this process: build, one first step, two untimed, ``steps`` timed steps."""
    import torch
    from torch._dynamo.utils import counters

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        c0 = cpu_seconds()
        setup, trainer = build_trainer(Path(tmp) / "run", compile=kind != "eager")
        c1, w1 = cpu_seconds(), time.perf_counter()
        trainer.step()
        c2, w2 = cpu_seconds(), time.perf_counter()
        for _ in range(2):
            trainer.step()
        c3, w3 = cpu_seconds(), time.perf_counter()
        for _ in range(steps):
            trainer.step()
        c4, w4 = cpu_seconds(), time.perf_counter()
    return {
        "kind": trainer.kind,
        "batch_size": setup.config.batch_size,
        "width": setup.config.width,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "build_cpu_s": c1 - c0,
        "first_step_cpu_s": c2 - c1,
        "first_step_wall_s": w2 - w1,
        "step_cpu_s": (c4 - c3) / steps,
        "step_wall_s": (w4 - w3) / steps,
        "inductor_counters": {k: v for k, v in counters["inductor"].items() if "cache" in k},
        "aot_autograd_counters": {k: v for k, v in counters["aot_autograd"].items() if "cache" in k},
    }


def run_child(kind: str, steps: int, cache: Path) -> dict:
    """``measure`` in a fresh process with one thread and Inductor's caches in ``cache``."""
    env = {
        **os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_CACHE_DIR": str(cache),
        "TORCHINDUCTOR_COMPILE_THREADS": "1", "PYTHONPATH": str(HERE.parent),
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--steps", str(steps)],
        env=env, check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: dict[str, dict]) -> str:
    """The rows as a text table, with each compiled row's break-even against the eager one."""
    eager = rows["eager"]
    lines = [
        f"{'step':<16}{'first step CPU s':>18}{'(wall s)':>10}{'per step CPU ms':>17}{'ratio':>7}"
        f"{'break-even':>12}{f'{FIT_STEPS} steps CPU s':>18}"
    ]
    for name, r in rows.items():
        ratio = r["step_cpu_s"] / eager["step_cpu_s"]
        extra = r["first_step_cpu_s"] - eager["first_step_cpu_s"]
        saved = eager["step_cpu_s"] - r["step_cpu_s"]
        even = "-" if name == "eager" else (f"{extra / saved:.0f}" if saved > 0 else "never")
        total = r["first_step_cpu_s"] + (FIT_STEPS - 1) * r["step_cpu_s"]
        lines.append(
            f"{name:<16}{r['first_step_cpu_s']:>18.1f}{r['first_step_wall_s']:>10.1f}"
            f"{1e3 * r['step_cpu_s']:>17.1f}{ratio:>7.2f}{even:>12}{total:>18.0f}"
        )
    for name in ("compiled, cold", "compiled, warm"):
        lines.append(f"{name}: {rows[name]['inductor_counters']} {rows[name]['aot_autograd_counters']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per process")
    parser.add_argument("--child", choices=("eager", "compiled"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.steps)))
        return
    with tempfile.TemporaryDirectory() as cache:
        rows = {
            "eager": run_child("eager", args.steps, Path(cache) / "unused"),
            "compiled, cold": run_child("compiled", args.steps, Path(cache) / "inductor"),
            "compiled, warm": run_child("compiled", args.steps, Path(cache) / "inductor"),
        }
    import torch

    meta = {"torch": torch.__version__, "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    print(table(rows))
    print(meta)
    out = HERE / "results" / "compile-cache.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
