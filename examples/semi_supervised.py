"""Compose: a class-label site on top of the library's VLAE, trained on a few labels.

The user's model generates the label from the top layer, p(y | z3) = Categorical(softmax(W z3)),
on top of the VLAE's p(x, z); its guide is the library's guide. Labelled images add the
site ``y`` (observed); unlabelled images omit it, which marginalises it exactly
(Σ_y p(y | z3) = 1). One ELBO covers both, as in M2 (Kingma et al. 2014); here y hangs
below z3 instead of above it, so no enumeration over y is needed. The shape class is the
label; it should end up readable from q(z3 | x).

    python examples/semi_supervised.py --steps 2000 --labelled 500
"""

import argparse

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.nn import PyroModule

from pyro_vlae import VLAE, Gaussian
from pyro_vlae.data import make_shapes

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--num-data", type=int, default=5000)
parser.add_argument("--labelled", type=int, default=500)
args = parser.parse_args()


class LabelledVLAE(PyroModule):
    """p(y | z_top) p(x, z) with the library's VLAE inside; the guide is the VLAE's."""

    def __init__(self, vlae: VLAE, num_classes: int) -> None:
        super().__init__()
        self.vlae = vlae
        self.classifier = torch.nn.Linear(vlae.z_dims[-1], num_classes)
        self.top = vlae.latent_sites[-1]

    def model(self, x, y=None, num_data=None, beta=1.0):
        # run the library's model and keep its trace to read the top layer
        trace = poutine.trace(self.vlae.model).get_trace(x, num_data=num_data, beta=beta)
        if y is not None:
            # a plate of its own: the model's "data" plate is already in the trace
            batch = x.shape[0]
            with pyro.plate("labels", num_data or batch, subsample=torch.arange(batch), dim=-1):
                pyro.sample("y", dist.Categorical(logits=self.classifier(trace.nodes[self.top]["value"])), obs=y)

    def guide(self, x, y=None, num_data=None, beta=1.0):
        self.vlae.guide(x, num_data=num_data, beta=beta)

    @torch.no_grad()
    def classify(self, x):
        loc = self.vlae.encode(x)[-1][0]  # posterior mean of the top layer
        return self.classifier(loc).argmax(-1)


pyro.set_rng_seed(0)
pyro.clear_param_store()
train, test = make_shapes(args.num_data), make_shapes(1000, seed=1)
labels = train.factors[:, -1].long()  # the shape class
labelled = torch.arange(args.labelled)
vlae = VLAE(x_shape=(3, 32, 32), z_dims=(3, 3, 3), likelihood=Gaussian(scale=0.1), width=0.25)
joint = LabelledVLAE(vlae, num_classes=5)
svi = SVI(joint.model, joint.guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
warmup = max(1, args.steps // 2)
for step in range(args.steps):
    beta = min(1.0, 1e-3 + step / warmup)
    i = labelled[torch.randint(len(labelled), (32,))]
    j = torch.randint(len(train), (32,))
    loss = svi.step(train.x[i], labels[i], num_data=len(labelled), beta=beta)
    loss += svi.step(train.x[j], None, num_data=len(train), beta=beta)
    if step % 100 == 0 or step == args.steps - 1:
        print(f"step {step:5d}  β {beta:.2f}  loss {loss / len(train):9.2f}")

vlae.eval()
accuracy = (joint.classify(test.x) == test.factors[:, -1].long()).float().mean()
print(f"shape-class accuracy from q(z3 | x) with {args.labelled} labels: {accuracy:.3f} (chance 0.2)")
