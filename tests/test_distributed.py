"""Data-parallel training: 2 gloo processes on the CPU against one process, and the failure modes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyro
import pytest
import torch
from conftest import fit_args, run
from PIL import Image
from pyro.infer import Trace_ELBO

from pyro_vlae import KLWarmup, RunConfig, Trainer
from pyro_vlae.data import StreamData
from pyro_vlae.errors import ConfigError
from pyro_vlae.run_folder import load_checkpoint, make_model, open_dataset
from pyro_vlae.train import LayerFadeIn, make_elbo
from pyro_vlae.train.distributed import local_batch_size, step_seed
from pyro_vlae.train.trainer import ScaledPair

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "data_parallel_svi.py"
OPTIONS = dict(
    plugin_options={"num_train": 64, "num_test": 16}, z_dims=(2, 2), width=0.125, batch_size=16, lr=3e-3,
    warmup_steps=3, seed=5, fade_in=4,
)
ARGS = [*fit_args(None, log_every=None), "--lr", "0.003", "--warmup-steps", "3", "--seed", "5", "--fade-in", "4"]
TIMEOUT = 240  # seconds for a whole launch on a busy machine; a hang fails the test instead of blocking it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    return {**e, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in extra.items()}}


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node N ARGS`` on the CPU."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", *args]
    r = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def spawn(rank: int, world_size: int, port: int, *args: str) -> subprocess.Popen:
    """One process of a data-parallel ``pyro-vlae fit``, with the variables torchrun would set."""
    return subprocess.Popen(
        [sys.executable, "-m", "pyro_vlae.cli", "fit", *args],
        env=env(RANK=rank, WORLD_SIZE=world_size, LOCAL_RANK=rank, LOCAL_WORLD_SIZE=world_size,
                MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(p: subprocess.Popen, timeout: float = TIMEOUT) -> tuple[int, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"process still running after {timeout}s (a hang):\n{out}{err}")
    return p.returncode, out + err


def reference_fit(
    config: RunConfig, world_size: int, jit: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One process on the same global batches: each of the ``world_size`` shards gets its own
    noise (seeded as in the data-parallel run) and batch-norm statistics; the gradients of the
    shards' ELBOs are averaged and torch's Adam takes the step. Returns the initial and final
    states. With ``jit`` every shard has its own JIT ELBO, compiled on its first step as in its
    process. Runs on one thread like the workers: Adam's first steps move a parameter by ±lr
    whatever its gradient's size, so a gradient that is zero up to rounding must round alike."""
    plugin = open_dataset(config)
    train = plugin.load("train")
    data = train.head() if isinstance(train, StreamData) else train.x
    config = config.resolve(plugin.recommended, plugin.default_likelihood, len(train))
    pyro.set_rng_seed(config.seed)
    model = make_model(config, train.shape)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    torch.set_num_threads(1)  # conftest's fresh_pyro fixture sets it back for the next test
    global_batches = Trainer(model, data, batch_size=config.batch_size, seed=config.seed)
    warmup = KLWarmup(config.warmup_steps, min(config.beta_start, config.beta), config.beta)
    optim = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)  # as the trainer's
    pair, b = ScaledPair(model, len(train)), config.batch_size // world_size
    guide = pair.guide  # one bound method: the JIT ELBO keys its trace on its id
    jit_elbos = [make_elbo("trace", jit=True) for _ in range(world_size)]
    fade = LayerFadeIn(config.fade_in)  # the VLAE's layers open from the top down, as in the trainer
    for step in range(config.steps):
        model.layer_gates.copy_(fade(step, model.num_layers))
        batch = global_batches.batch_indices(step)
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        for rank in reversed(range(world_size)):  # process 0 last: its batch-norm statistics are kept
            if rank == 0:
                for k, v in model.named_buffers():
                    v.copy_(buffers[k])
            torch.manual_seed(step_seed(config.seed, step, rank))
            x = data[batch[rank * b : (rank + 1) * b]]
            if jit:
                with pyro.validation_enabled(False):
                    beta = torch.tensor(warmup(step))
                    loss = jit_elbos[rank].differentiable_loss(pair, guide, x, beta)
            else:
                loss = Trace_ELBO().differentiable_loss(
                    model.model, model.guide, x, num_data=len(train), beta=warmup(step)
                )
            (loss / world_size).backward()
        optim.step()
        optim.zero_grad()
    return initial, model.state_dict()


def assert_same_state(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-5, msg=k)


def test_two_processes_match_one_process_on_the_same_global_batches_and_resume(tmp_path):
    out = tmp_path / "ddp"
    fit = ["-m", "pyro_vlae.cli", "fit", *ARGS, "--out", str(out), "--log-every", "3"]
    first = torchrun(*fit, "--steps", "3", "--checkpoint-every", "2")
    assert first.stdout.count("pyro-vlae 0.1.0") == 1 and "× 2 processes" in first.stdout  # one writer
    torchrun("-m", "pyro_vlae.cli", "fit", "--resume", "--out", str(out), "--steps", "6", "--no-progress")

    ckpt = load_checkpoint(out)
    assert ckpt["trainer"]["step"] == 6 and ckpt["finished"]
    assert [line.split(",")[0] for line in (out / "metrics.csv").read_text().split()[1:]] == ["3", "6"]
    initial, expected = reference_fit(RunConfig(**OPTIONS, steps=6), world_size=2)
    assert_same_state(ckpt["trainer"]["model"], expected)
    assert any(not torch.allclose(expected[k], initial[k]) for k in expected if expected[k].is_floating_point())


def write_images(folder: Path, n: int = 40) -> None:
    gen = torch.Generator().manual_seed(0)
    for i in range(n):
        pixels = torch.randint(0, 256, (12, 12, 3), generator=gen, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i:02d}.png")


def test_streamed_data_and_the_jit_elbo_under_two_processes(tmp_path):
    """Each process reads only its shard from the loader's workers, and the JIT ELBO is traced in
    each process; the result equals one process on the same shards with one JIT ELBO per shard."""
    (tmp_path / "pics").mkdir()
    write_images(tmp_path / "pics")
    options = {**OPTIONS, "plugin": "image-folder", "data_dir": str(tmp_path / "pics"),
               "plugin_options": {"size": 8, "test_fraction": 0.2, "num_workers": 1}, "steps": 4}
    out = tmp_path / "run"
    torchrun("-m", "pyro_vlae.cli", "fit", *ARGS[4:], "--plugin", "image-folder", "--data-dir",
             str(tmp_path / "pics"), "-P", "size=8", "-P", "test_fraction=0.2", "-P", "num_workers=1",
             "--steps", "4", "--jit", "--out", str(out))
    _, expected = reference_fit(RunConfig(**options), world_size=2, jit=True)
    assert_same_state(load_checkpoint(out)["trainer"]["model"], expected)


def test_a_killed_process_stops_the_others_with_a_clear_error(tmp_path):
    port, out = free_port(), tmp_path / "run"
    args = [*ARGS, "--steps", "100000", "--checkpoint-every", "2", "--log-every", "1000", "--dist-timeout", "60",
            "--out", str(out)]
    workers = [spawn(rank, 2, port, *args) for rank in range(2)]
    deadline = time.monotonic() + TIMEOUT
    while not (out / "checkpoint.pt").exists():  # training is under way
        assert time.monotonic() < deadline and workers[0].poll() is None, finish(workers[0], 1)[1]
        time.sleep(0.2)
    workers[1].send_signal(signal.SIGKILL)
    code, output = finish(workers[0], timeout=90)
    workers[1].wait()
    assert code == 1, output
    assert "lost contact with the others" in output and "--resume" in output and "Traceback" not in output
    assert load_checkpoint(out)["trainer"]["step"] >= 2  # the last checkpoint is intact


def test_a_signal_to_one_process_stops_all_after_the_same_step_with_its_checkpoint(tmp_path):
    port, out = free_port(), tmp_path / "run"
    args = [*ARGS, "--steps", "100000", "--checkpoint-every", "50000", "--log-every", "2", "--out", str(out)]
    workers = [spawn(rank, 2, port, *args) for rank in range(2)]
    deadline = time.monotonic() + TIMEOUT
    while not (out / "metrics.csv").exists() or (out / "metrics.csv").read_text().count("\n") < 2:
        assert time.monotonic() < deadline and workers[0].poll() is None, finish(workers[0], 1)[1]
        time.sleep(0.2)
    workers[1].send_signal(signal.SIGTERM)  # process 1 alone, as a scheduler stopping one node
    (code, output), (code1, _) = finish(workers[0]), finish(workers[1])
    assert code == code1 == 128 + signal.SIGTERM, output
    step = load_checkpoint(out)["trainer"]["step"]
    assert f"stopped by SIGTERM after step {step} of 100000" in output and "Traceback" not in output


def test_different_options_or_a_missing_process_give_clear_errors(tmp_path):
    port, args = free_port(), [*ARGS, "--steps", "4", "--out", str(tmp_path / "run")]
    # started together to share the start-up time: two processes that disagree, one whose peer never comes
    workers = [spawn(0, 2, port, *args), spawn(1, 2, port, *args, "--beta", "2"),
               spawn(0, 2, free_port(), *ARGS, "--steps", "4", "--dist-timeout", "3", "--out", str(tmp_path / "r"))]
    for code, output in map(finish, workers[:2]):
        assert code == 1 and "different options: beta (process 0: 1.0, process 1: 2.0)" in output, output
        assert "Traceback" not in output
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    code, output = finish(workers[2])
    assert code == 1 and "could not meet the others" in output and "Traceback" not in output, output


def run_cli(*args):
    return run("fit", *ARGS, "--steps", "2", *args)


def test_missing_rendezvous_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    for name in ("MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    r = run_cli("--out", str(tmp_path / "r"))
    assert r.exit_code == 1 and "rendezvous" in r.output and "MASTER_ADDR" in r.output and "torchrun" in r.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("gpus", [0, 1])
def test_cuda_with_fewer_gpus_than_processes(tmp_path, monkeypatch, gpus):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    for name, value in dict(WORLD_SIZE=2, LOCAL_WORLD_SIZE=2, RANK=0, LOCAL_RANK=0, MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=free_port()).items():
        monkeypatch.setenv(name, str(value))
    r = run_cli("--device", "cuda", "--out", str(tmp_path / "r"))
    assert r.exit_code == 1 and f"need one GPU each, but PyTorch sees {gpus}" in r.output, r.output
    if gpus:  # auto falls back to the CPU only when there is no GPU at all
        r = run_cli("--device", "auto", "--out", str(tmp_path / "r"))
        assert r.exit_code == 1 and "need one GPU each, but PyTorch sees 1" in r.output, r.output


def test_global_batch_must_split_over_the_processes():
    assert local_batch_size(16, 2) == 8
    with pytest.raises(ConfigError, match="multiple of 3"):
        local_batch_size(16, 3)
    with pytest.raises(ConfigError, match="fewer than 2 points per process"):
        local_batch_size(4, 4)
    assert len({step_seed(0, step, rank) for step in range(50) for rank in range(4)}) == 200


def test_example_script_under_torchrun(tmp_path):
    r = torchrun(str(EXAMPLE), "--steps", "3", "--num-data", "64", "--out", str(tmp_path))
    assert "step 3" in r.stdout and "parameters equal in all 2 processes: True" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "samples.png").exists()
