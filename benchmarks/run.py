"""The pyro-vlae speed suite: one command, one table.

    python benchmarks/run.py                  # CPU: the whole table in a few minutes
    python benchmarks/run.py --quick          # fewer timed steps
    python benchmarks/run.py --device cuda    # on a GPU, with batch 512 and bf16 rows

Every row trains copies of one freshly built model, side by side on the same data, and
interleaves their steps (the order rotates every round), so a busy machine slows all of them
alike; times are medians and the ratio is the median of the per-round ratios, with its
interquartile range as the noise. Variants:

* ``hand``: the hand-written PyTorch ELBO loop of ``benchmarks/reference.py`` on the very
  same networks and likelihood (the baseline, ratio 1);
* ``trainer``: ``pyro_vlae.Trainer`` with its defaults (what ``pyro-vlae fit`` runs: the eager
  step on the CPU, the whole-step CUDA graph on CUDA);
* ``trainer --compile`` (CPU, ``tiny`` rows): ``compile=True``, loss and gradients traced once
  and compiled by ``torch.compile``; compiling takes minutes on a CPU, so only the tiny model
  has this variant; ``trainer --eager`` (CUDA): ``compile=False``, the eager step;
* ``trainer --jit``: the default step with Pyro's JIT-compiled ELBO;
* ``SVI.step``: plain Pyro, ``SVI(model, guide, pyro.optim.Adam, Trace_ELBO()).step(x, beta=…)``
  with Pyro's defaults (validation on, a float β), the loop of the README's Python example;
* on CUDA, ``trainer --bf16`` and ``hand --bf16`` (bfloat16 autocast).

The ``tiny`` rows (the dense ``mlp`` stem at width 0.05 on 784-vectors, 52 k parameters) are
where the framework's per-step work shows: compute is cheap there, as it is for every model
on a GPU; they run 50 times as many interleaved steps. The load average of the machine is
printed with the table.

Further rows: one epoch of MNIST-size data (60,000 images of 28×28) through the trainer, and
IWAE-1000 log-likelihood estimation of 10,000 test images (on the CPU both are timed on a
part and scaled up, which the table says). Each row runs in its own process, so its peak
memory (RSS and, on CUDA, the allocator's peak) is its own.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import resource
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (row label, data shape, stem, width): each model's default architecture for MNIST- and
# SVHN-size images, the dense model, and the dense model at 1/20 width (the overhead rows)
STEP_CASES = [
    *((f"{m} small", (1, 28, 28), "auto", 1.0) for m in ("VLAE", "HVAE", "LVAE")),
    *((f"{m} medium", (3, 32, 32), "auto", 1.0) for m in ("VLAE", "HVAE", "LVAE")),
    ("VLAE mlp", (784,), "mlp", 1.0),
    ("VLAE tiny", (784,), "mlp", 0.05),
]
TINY_STEPS = 50  # the tiny rows' steps, relative to the others
Z_DIMS = (2, 2, 2)
LR = 2e-4


# ---------------------------------------------------------------------------- one row
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory(device) -> dict:
    import torch

    peak = {"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        peak["gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peak


def _fresh_model(shape, stem, device, name, kind="vlae", width=1.0):
    """A new model of the row, with its own names in Pyro's parameter store."""
    from pyro_vlae import build_model

    return build_model(kind, shape, Z_DIMS, stem=stem, width=width, name=name).to(device)


def run_step_case(label, shape, stem, batch, device, steps, clock="wall", warmup_steps=2, width=1.0,
                  variants=None) -> dict:
    """Median ms/step of every variant on one model and batch size (of those named in
    ``variants`` and the hand-written baseline, when ``variants`` is given)."""
    import pyro
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from reference import HandwrittenTrainer

    from pyro_vlae import KLWarmup, Trainer

    pyro.set_rng_seed(0)
    num_data = max(4096, 8 * batch)
    data = torch.rand(num_data, *shape, device=device)
    warmup = KLWarmup(1000)
    base = _fresh_model(shape, stem, "cpu", "base", kind=label.split()[0].lower(), width=width)
    channels_last = device.type == "cuda" and len(shape) == 3
    if channels_last:
        data = data.contiguous(memory_format=torch.channels_last)

    def copy_of(name):
        m = copy.deepcopy(base).to(device)
        m._pyro_name = name
        if channels_last:
            m.to(memory_format=torch.channels_last)
        return m

    chosen, variants = variants, {}

    def wanted(name: str) -> bool:
        return chosen is None or name in chosen or name.startswith("hand")

    def add_hand(name, bf16=False):
        hand = HandwrittenTrainer(copy_of(name.replace(" ", "").replace("-", "")), num_data, LR, bf16=bf16)
        perm, state = torch.randperm(num_data, device=device), {"i": 0}

        def step():
            i = state["i"] % (num_data // batch)
            state["i"] += 1
            hand.step(data[perm[i * batch : (i + 1) * batch]], warmup(state["i"]))

        variants[name] = step

    def add_trainer(name, **options):
        if not wanted(name):
            return
        trainer = Trainer(copy_of(name.replace(" ", "").replace("-", "")), data, batch_size=batch, lr=LR,
                          warmup=warmup, **options)
        variants[name] = trainer.train_step

    add_hand("hand")
    add_trainer("trainer")
    compile_seconds = None
    if device.type == "cuda":
        add_trainer("trainer --eager", compile=False)
    elif label.endswith("tiny") and wanted("trainer --compile"):
        add_trainer("trainer --compile", compile=True)
        started = time.perf_counter()
        variants["trainer --compile"]()  # traced and compiled here, once
        compile_seconds = time.perf_counter() - started
    add_trainer("trainer --jit", jit=True)
    svi_model = copy_of("svi")
    svi = SVI(svi_model.model, svi_model.guide, pyro.optim.Adam({"lr": LR}), Trace_ELBO())
    svi_state = {"i": 0}

    def svi_step():
        i = svi_state["i"] % (num_data // batch)
        svi_state["i"] += 1
        with pyro.validation_enabled(True):  # Pyro's default
            svi.step(data[i * batch : (i + 1) * batch], num_data=num_data, beta=warmup(svi_state["i"]))

    if wanted("SVI.step"):
        variants["SVI.step"] = svi_step
    if device.type == "cuda":
        add_trainer("trainer --bf16", bf16=True)
        add_hand("hand --bf16", bf16=True)

    failed = {}
    for name, step in list(variants.items()):  # warm-up: caches, JIT trace, cuDNN autotuning
        try:
            for _ in range(warmup_steps):
                step()
        except Exception as error:  # reported in the table, the other variants still measured
            failed[name] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
            traceback.print_exc()
            del variants[name]
    _sync(device)
    times = {name: [] for name in variants}
    names = list(variants)
    now = time.process_time if clock == "cpu" else time.perf_counter
    for r in range(steps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = now()
            variants[name]()
            _sync(device)
            times[name].append(now() - t0)
    calls = {name: python_calls(variants[name]) for name in names}
    hand_key = {name: ("hand --bf16" if "bf16" in name else "hand") for name in names}
    result = {"label": label, "shape": list(shape), "batch": batch, "device": str(device), "steps": steps,
              "clock": clock, "variants": {}, "compile_seconds": compile_seconds, "failed": failed}
    for name in names:
        ratios = sorted(t / h for t, h in zip(times[name], times[hand_key[name]]))
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else [ratios[0]] * 3
        ms = statistics.median(times[name]) * 1e3
        result["variants"][name] = {"ms": ms, "ratio": statistics.median(ratios), "ratio_q1": q1,
                                    "ratio_q3": q3, "images_per_s": batch / ms * 1e3,
                                    "python_calls": calls[name]}
    result.update(_peak_memory(device))
    return result


def python_calls(step, repeats: int = 3) -> int:
    """Python function calls per step, counted by cProfile: the interpreter overhead of a
    variant, independent of how busy the machine is."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(repeats):
        step()
    profile.disable()
    return pstats.Stats(profile).total_calls // repeats


def run_epoch_case(batch, device, steps) -> dict:
    """Images/s of the default VLAE on MNIST-size data (60,000 × 1×28×28) through the trainer;
    ``steps=0`` runs the whole epoch."""
    import pyro
    import torch

    from pyro_vlae import KLWarmup, Trainer

    pyro.set_rng_seed(0)
    data = torch.rand(60_000, 1, 28, 28, device=device)
    trainer = Trainer(_fresh_model((1, 28, 28), "auto", device, "epoch"), data, batch_size=batch, lr=LR,
                      warmup=KLWarmup(1000))
    for _ in range(3):
        trainer.train_step()
    _sync(device)
    n = trainer.batches_per_epoch if steps == 0 else min(steps, trainer.batches_per_epoch)
    t0 = time.perf_counter()
    for _ in range(n):
        loss = trainer.train_step()
    float(loss)
    seconds = time.perf_counter() - t0
    rate = n * batch / seconds
    return {"label": "epoch", "batch": batch, "device": str(device), "steps": n,
            "full_epoch": n == trainer.batches_per_epoch, "images_per_s": rate,
            "epoch_seconds": 60_000 / rate, **_peak_memory(device)}


def run_iwae_case(num_images, num_samples, chunk, device) -> dict:
    """IWAE-K log-likelihood of ``num_images`` images (default VLAE on 1×28×28), K in
    chunks of ``chunk`` samples so memory grows with ``chunk × batch``, not K."""
    import pyro
    import torch


    pyro.set_rng_seed(0)
    model = _fresh_model((1, 28, 28), "auto", device, "iwae").eval()
    data = torch.rand(num_images, 1, 28, 28, device=device)
    batch = 100 if device.type == "cuda" else 10
    _sync(device)
    t0 = time.perf_counter()
    estimates = [iwae(model, data[i : i + batch], num_samples, chunk) for i in range(0, num_images, batch)]
    mean = float(torch.cat(estimates).mean())
    seconds = time.perf_counter() - t0
    return {"label": "iwae", "device": str(device), "images": num_images, "K": num_samples, "chunk": chunk,
            "seconds": seconds, "seconds_10k": seconds * 10_000 / num_images, "mean_iwae": mean,
            **_peak_memory(device)}


def iwae(model, x, num_samples: int, chunk: int):
    """log p(x) ≥ IWAE_K = log (1/K) Σ_k p(x, z_k) / q(z_k | x), z_k ~ q(z | x) (Burda et
    al. 2016), with the VLAE's flat prior, summed over ``chunk`` samples at a time."""
    import torch

    half_log_2pi = 0.5 * math.log(2 * math.pi)
    with torch.no_grad():
        params = model.encode(x)
        log_w = []
        for start in range(0, num_samples, chunk):
            k = min(chunk, num_samples - start)
            zs, log_q, log_p = [], 0.0, 0.0
            for loc, scale in params:
                eps = torch.randn(k, *loc.shape, device=x.device)
                z = loc + scale * eps
                log_q = log_q + (-0.5 * eps**2 - scale.log() - half_log_2pi).sum(-1)
                log_p = log_p + (-0.5 * z**2 - half_log_2pi).sum(-1)
                zs.append(z.flatten(0, 1))
            xk = x.expand(k, *x.shape).flatten(0, 1)
            log_lik = model.likelihood(model.decode(zs)).log_prob(xk).view(k, -1)
            log_w.append(log_lik + log_p - log_q)
        return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(num_samples)


# ------------------------------------------------------------------------ the table
def _run_child(case: dict, device: str, threads: int | None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(case), "--device", device]
    if threads:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark case {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    """The machine's 1-, 5- and 15-minute load averages and its CPU count."""
    import os

    return "/".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def _memory(r: dict) -> str:
    text = f"{r['rss_mib']:.0f} MiB RSS"
    return text + (f", {r['gpu_mib']:.0f} MiB GPU" if "gpu_mib" in r else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="fewer timed steps (noisier)")
    parser.add_argument("--steps", type=int, help="timed steps per variant (default CPU 6, CUDA 30; quick: half)")
    parser.add_argument("--batches", help="comma-separated batch sizes (default 16,128; CUDA 16,128,512)")
    parser.add_argument("--models", default="vlae,hvae,lvae",
                        help="step rows to run: models and/or stems, e.g. vlae or small,mlp (default all)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads in every case")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="time steps by the wall clock, or by this process's CPU time (steadier on a "
                             "machine shared with other jobs; CPU only, best with --threads 1)")
    parser.add_argument("--variants", help="step variants to run beside `hand`, comma-separated, e.g. "
                        "trainer,'trainer --compile' (default all)")
    parser.add_argument("--no-epoch", action="store_true", help="leave out the epoch and IWAE rows")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for results JSON and PNG")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and args.device == "cuda":
        raise SystemExit("--clock cpu times CPU work only; use the wall clock with --device cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA device")
    device = torch.device(args.device)
    if args.case:
        case = json.loads(args.case)
        kind = case.pop("kind")
        sys.path.insert(0, str(HERE))
        fn = {"step": run_step_case, "epoch": run_epoch_case, "iwae": run_iwae_case}[kind]
        if kind == "step":
            case["shape"] = tuple(case["shape"])
        print(json.dumps(fn(device=device, **case)))
        return

    cuda = args.device == "cuda"
    steps = args.steps or (30 if cuda else 6) // (2 if args.quick else 1)
    batches = [int(b) for b in (args.batches or ("16,128,512" if cuda else "16,128")).split(",")]
    started = time.perf_counter()
    import platform

    import pyro

    name = torch.cuda.get_device_name() if cuda else (platform.processor() or platform.machine())
    print(f"pyro-vlae speed suite: {name}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"pyro {pyro.__version__}; {steps} interleaved steps per variant ({steps * TINY_STEPS} for the tiny rows), "
          f"{args.clock} clock; load average {_load()}")
    print(f"{'model':<12} {'batch':>5} {'device':<6} {'variant':<15} {'ms/step':>9} {'hand ms':>9} "
          f"{'ratio':>6} {'ratio IQR':>12} {'images/s':>9} {'py calls':>9}  peak memory")
    chosen = set(args.models.lower().split(","))

    def wanted(word: str, group: set[str]) -> bool:  # chosen, or none of its group chosen
        return word in chosen or not chosen & group

    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    results = []
    for label, shape, stem, width in STEP_CASES:
        model, stem_name = label.lower().split()
        if not (wanted(model, {"vlae", "hvae", "lvae"}) and wanted(stem_name, {"small", "medium", "mlp", "tiny"})):
            continue
        for batch in batches:
            r = _run_child({"kind": "step", "label": label, "shape": shape, "stem": stem, "batch": batch,
                            "steps": steps * (TINY_STEPS if stem_name == "tiny" else 1), "clock": args.clock,
                            "width": width, "variants": variants}, args.device, args.threads)
            results.append(r)
            for variant, v in r["variants"].items():
                hand = r["variants"]["hand --bf16" if "bf16" in variant else "hand"]["ms"]
                print(f"{label:<12} {batch:>5} {args.device:<6} {variant:<15} {v['ms']:>9.2f} {hand:>9.2f} "
                      f"{v['ratio']:>6.3f} {v['ratio_q1']:>5.2f}–{v['ratio_q3']:<5.2f} {v['images_per_s']:>9.0f} "
                      f"{v['python_calls']:>9}  {_memory(r) if variant == 'hand' else ''}", flush=True)
            if r.get("compile_seconds"):
                print(f"{'':<25}(trainer --compile: traced and compiled in {r['compile_seconds']:.0f} s)")
            for variant, reason in r.get("failed", {}).items():
                print(f"{label:<12} {batch:>5} {args.device:<6} {variant:<15} failed: {reason}", flush=True)
    if args.no_epoch:
        return _write(results, args, started)
    epoch_batch = 512 if cuda else 128
    r = _run_child({"kind": "epoch", "batch": epoch_batch, "steps": 0 if cuda else (8 if args.quick else 20)},
                   args.device, args.threads)
    results.append(r)
    part = "whole epoch" if r["full_epoch"] else f"{r['steps']} steps, scaled"
    print(f"\nepoch of 60,000 × 1×28×28, VLAE small, batch {epoch_batch}, trainer defaults: "
          f"{r['images_per_s']:,.0f} images/s, {r['epoch_seconds']:.1f} s/epoch ({part}); {_memory(r)}")
    images = 10_000 if cuda else (4 if args.quick else 10)
    r = _run_child({"kind": "iwae", "num_images": images, "num_samples": 1000, "chunk": 100},
                   args.device, args.threads)
    results.append(r)
    part = "all 10,000 images" if images == 10_000 else f"{images} images, scaled to 10,000"
    print(f"IWAE-1000 of 10,000 × 1×28×28, VLAE small, chunks of 100 samples: {r['seconds_10k']:.1f} s "
          f"({part}); {_memory(r)}")
    _write(results, args, started)


def _write(results: list[dict], args: argparse.Namespace, started: float) -> None:
    """The results as JSON and their chart, into ``--out``."""
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"speed-{args.device}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    picture = plot_ratios(results, args.out / f"speed-{args.device}.png")
    print(f"\nsuite took {time.perf_counter() - started:.0f} s (load average now {_load()}); "
          f"wrote {path} and {picture}")


def plot_ratios(results: list[dict], path: Path) -> Path | None:
    """Bar chart of each variant's time relative to the hand-written loop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if "variants" in r]
    if not rows:
        return None
    variants = list(dict.fromkeys(v for r in rows for v in r["variants"] if not v.startswith("hand")))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + 1.1 * len(rows)), 3.6))
    width = 0.8 / len(variants)
    for j, name in enumerate(variants):
        have = [(i, r["variants"][name]) for i, r in enumerate(rows) if name in r["variants"]]
        xs = [i + j * width for i, _ in have]
        ratios = [v["ratio"] for _, v in have]
        errs = [[v["ratio"] - v["ratio_q1"] for _, v in have], [v["ratio_q3"] - v["ratio"] for _, v in have]]
        ax.bar(xs, ratios, width, yerr=errs, label=name, capsize=2)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(1.10, color="k", lw=0.6, ls="--")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
    ax.set_xticklabels([f"{r['label']}\nB={r['batch']}" for r in rows], fontsize=7)
    ax.set_ylabel("time / hand-written time")
    ax.set_title(f"pyro-vlae training step vs hand-written PyTorch ({rows[0]['device']})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
