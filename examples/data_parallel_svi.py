"""Data-parallel SVI of a VLAE from your own Pyro script, on torch.distributed.

Run it with torchrun, on CPUs (gloo) or one GPU per process (NCCL)::

    torchrun --nproc-per-node 2 examples/data_parallel_svi.py --steps 300 --out runs/ddp-example

Every process builds the same model, trains on its own shard of each global batch
(DistributedSampler) and DistributedDataParallel averages the gradients, so the processes
keep equal parameters. The lines marked ``# DDP`` are all that differs from a
single-process script.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pyro
import torch
import torch.distributed as dist
from pyro.infer import Trace_ELBO
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from pyro_vlae import VLAE, Gaussian
from pyro_vlae.data import make_shapes
from pyro_vlae.plotting import save_images
from pyro_vlae.train import data_parallel_svi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch, split over the processes")
    parser.add_argument("--num-data", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("runs/ddp-example"))
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")  # DDP: torchrun sets the rendezvous
    rank, world_size = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")

    data = TensorDataset(make_shapes(args.num_data).x)
    sampler = DistributedSampler(data, seed=0, drop_last=True)  # DDP: each process its shard
    loader = DataLoader(data, batch_size=args.batch_size // world_size, sampler=sampler, drop_last=True)

    pyro.set_rng_seed(0)  # the same initial parameters everywhere (DDP also copies process 0's)
    vlae = VLAE(x_shape=(3, 32, 32), z_dims=(3, 3, 3), likelihood=Gaussian(scale=0.1), width=0.25).to(device)
    optim = pyro.optim.Adam({"lr": 1e-3})
    svi = data_parallel_svi(  # DDP: gradients averaged over the processes
        vlae, vlae.guide, optim, Trace_ELBO(), device_ids=[device.index] if cuda else None
    )
    pyro.set_rng_seed(1 + rank)  # DDP: independent sampling noise in each process

    step, epoch = 0, 0
    while step < args.steps:
        sampler.set_epoch(epoch)
        for (x,) in loader:
            beta = min(1.0, 1e-3 + step / 100)  # KL warm-up
            # the data plate scales the shard to the data set; DDP averages over the shards
            loss = svi.step(x.to(device), num_data=len(data), beta=beta)
            step += 1
            if rank == 0 and (step % 50 == 0 or step == args.steps):
                print(f"step {step}: loss {loss / len(data):.2f} per data point (process 0's shard)")
            if step == args.steps:
                break
        epoch += 1

    flat = torch.cat([p.detach().flatten() for p in vlae.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world_size)]
    dist.all_gather(copies, flat)
    if rank == 0:  # one process writes
        same = all(torch.equal(copies[0], c) for c in copies)
        print(f"parameters equal in all {world_size} processes: {same}")
        args.out.mkdir(parents=True, exist_ok=True)
        vlae.eval()
        print("wrote", save_images(vlae.generate(64), args.out / "samples.png", nrow=8))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
