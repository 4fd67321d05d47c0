"""Fix one layer with poutine.condition and generate: same abstract features, new details.

Encodes a few images, keeps their top layer z3 and re-samples the other layers from the
prior, so each row of ``same-top-layer.png`` shares z3 (for a trained VLAE on shapes: the
shape class) and varies everything else.

    python examples/condition_layer.py --steps 2000
"""

import argparse
from pathlib import Path

import pyro
import torch
from pyro import poutine

from pyro_vlae import VLAE, Gaussian, KLWarmup, Trainer
from pyro_vlae.data import make_shapes
from pyro_vlae.plotting import save_images

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--num-data", type=int, default=5000)
parser.add_argument("--layer", default="z3", help="the layer to hold fixed")
parser.add_argument("--out", type=Path, default=Path("."))
args = parser.parse_args()

pyro.set_rng_seed(0)
pyro.clear_param_store()
data = make_shapes(args.num_data).x
vlae = VLAE(x_shape=(3, 32, 32), z_dims=(3, 3, 3), likelihood=Gaussian(scale=0.1), width=0.25)
trainer = Trainer(vlae, data, batch_size=64, lr=1e-3, warmup=KLWarmup(args.steps // 2))
for step in range(args.steps):
    loss = trainer.step()
    if step % 100 == 0 or step == args.steps - 1:
        print(f"step {step:5d}  loss per image {loss:9.2f}")

vlae.eval()
rows, cols = 6, 8
with torch.no_grad():
    code = vlae.sample_latents(data[:rows])[args.layer]  # one draw from q(z_layer | x)
fixed = code.repeat_interleave(cols, dim=0)  # each code repeated along its row
same_layer = poutine.condition(vlae.model, data={args.layer: fixed})
with torch.no_grad():
    trace = poutine.trace(same_layer).get_trace(batch_size=rows * cols)
images = trace.nodes["x"]["fn"].mean  # the likelihood's mean, (rows * cols, 3, 32, 32)
# first column: the encoded originals
grid = torch.cat([data[:rows, None], images.reshape(rows, cols, 3, 32, 32)], dim=1).flatten(0, 1)
args.out.mkdir(parents=True, exist_ok=True)
print("wrote", save_images(grid, args.out / "same-top-layer.png", nrow=cols + 1))
