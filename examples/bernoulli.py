"""Swap the likelihood: a VLAE with a Bernoulli decoder on binarized data.

    python examples/bernoulli.py --steps 2000
"""

import argparse
from pathlib import Path

import pyro
import torch

from pyro_vlae import VLAE, Bernoulli, KLWarmup, Trainer
from pyro_vlae.data import make_shapes
from pyro_vlae.evaluate import evaluate_elbo
from pyro_vlae.plotting import save_images, save_layer_grids

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--num-data", type=int, default=5000)
parser.add_argument("--out", type=Path, default=Path("."))
args = parser.parse_args()

pyro.set_rng_seed(0)
pyro.clear_param_store()
# grey silhouettes in {0, 1}: the brightest channel, thresholded
binarize = lambda x: (x.amax(1, keepdim=True) > 0.5).float()  # noqa: E731
train, test = binarize(make_shapes(args.num_data).x), binarize(make_shapes(500, seed=1).x)

vlae = VLAE(x_shape=(1, 32, 32), z_dims=(2, 2, 2), likelihood=Bernoulli(), width=0.25)
vlae.check_data(train)  # the Bernoulli likelihood refuses anything but 0 and 1
trainer = Trainer(vlae, train, batch_size=64, lr=1e-3, warmup=KLWarmup(args.steps // 2))
for step in range(args.steps):
    loss = trainer.step()
    if step % 100 == 0 or step == args.steps - 1:
        print(f"step {step:5d}  loss per image {loss:8.2f} nats")

terms = evaluate_elbo(vlae, test)
print(f"test ELBO {terms['elbo']:.2f} nats per image; KL per layer", [round(k, 2) for k in terms["kl"]])
args.out.mkdir(parents=True, exist_ok=True)
with torch.no_grad():
    print("wrote", save_images(vlae.generate(64), args.out / "bernoulli-samples.png", nrow=8))
print("wrote", *save_layer_grids(vlae, args.out, prefix="bernoulli-"))
