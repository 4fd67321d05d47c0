"""Bernoulli likelihood for binary data (e.g. binarized MNIST)."""

from __future__ import annotations

import pyro.distributions as dist
from torch import Tensor

from ..errors import DataError
from .base import Likelihood


class Bernoulli(Likelihood):
    """x ~ Bernoulli(sigmoid(f0(z̃1))), independently per element.

    :param probabilities: if true, accept targets anywhere in [0, 1] and score them with
        the cross-entropy ``x log p + (1 − x) log(1 − p)`` (not a normalised density);
        by default data outside {0, 1} is refused.
    """

    name = "bernoulli"
    description = "Bernoulli on {0,1} data (logits from the decoder)"
    discrete = True

    def __init__(self, probabilities: bool = False, value_range: tuple[float, float] = (0.0, 1.0)):
        if tuple(value_range) != (0.0, 1.0):
            raise DataError(
                f"the Bernoulli likelihood needs data in {{0, 1}}, but the data range is {value_range}",
                "binarize the data (e.g. --plugin binarized-mnist) or use --likelihood gaussian",
            )
        super().__init__((0.0, 1.0))
        self.probabilities = bool(probabilities)

    def forward(self, params: Tensor) -> dist.TorchDistribution:
        return dist.Bernoulli(logits=params, validate_args=False).to_event(self.event_dim(params))

    def check(self, x: Tensor) -> None:
        super().check(x)
        if not self.probabilities and not ((x == 0) | (x == 1)).all():
            raise DataError(
                "the Bernoulli likelihood got continuous data (values other than 0 and 1)",
                "binarize the data (e.g. --plugin binarized-mnist), pick --likelihood gaussian, "
                "or construct Bernoulli(probabilities=True) to score values in [0, 1]",
            )

    def extra_repr(self) -> str:
        return f"probabilities={self.probabilities}"



