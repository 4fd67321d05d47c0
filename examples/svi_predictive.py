"""Train a VLAE with your own SVI loop, then encode data with Predictive and the library's guide.

    python examples/svi_predictive.py --steps 1000
"""

import argparse

import pyro
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO

from pyro_vlae import VLAE, Gaussian
from pyro_vlae.data import make_shapes

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=1000)
parser.add_argument("--num-data", type=int, default=5000)
parser.add_argument("--batch-size", type=int, default=64)
args = parser.parse_args()

pyro.set_rng_seed(0)
pyro.clear_param_store()
shapes = make_shapes(args.num_data)
data = shapes.x
vlae = VLAE(x_shape=(3, 32, 32), z_dims=(3, 3, 3), likelihood=Gaussian(scale=0.1), width=0.25)

svi = SVI(vlae.model, vlae.guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
warmup = max(1, args.steps // 2)
for step in range(args.steps):
    x = data[torch.randint(len(data), (args.batch_size,))]
    beta = min(1.0, 1e-3 + step / warmup)  # KL warm-up
    loss = svi.step(x, num_data=len(data), beta=beta) / len(data)
    if step % 100 == 0 or step == args.steps - 1:
        print(f"step {step:5d}  β {beta:.2f}  loss per image {loss:9.2f}")

# Encode: Predictive runs the guide and returns the posterior draws of every layer.
vlae.eval()
encode = Predictive(vlae.model, guide=vlae.guide, num_samples=10, return_sites=vlae.latent_sites)
codes = encode(data[:100])  # {"z1": (10, 100, 3), "z2": ..., "z3": ...}
for name, draws in codes.items():
    mean = draws.mean(0)
    # how well does each layer's posterior mean track each ground-truth factor?
    corr = [
        max(abs(torch.corrcoef(torch.stack([mean[:, d], shapes.factors[:100, f]]))[0, 1].item()) for d in range(3))
        for f in range(shapes.factors.shape[1])
    ]
    print(name, tuple(draws.shape), "max |corr| with", dict(zip(shapes.factor_names, (round(c, 2) for c in corr))))
