"""A factor reader: a small network that reads a data set's ground-truth factors off an image.

The intervention matrix (:mod:`pyro_vlae.evaluate.intervention`) needs the factors of
*generated* images, which have no labels. A :class:`FactorReader` is trained on the real
training split to predict every factor of :attr:`TensorData.factors
<pyro_vlae.data.TensorData.factors>` (class, hue, position ...) and then reads them off the
model's samples. Its quality on held-out real data (:attr:`FactorReader.quality`) is
stored with it; :meth:`FactorReader.check` refuses a reader below
:data:`MIN_READER_QUALITY`, since a metric read by a network that cannot read the factor
would be noise.

Factors are of three kinds, as in :func:`~pyro_vlae.evaluate.hierarchy.probe_score`:

* ``categorical`` (few distinct integer values, :func:`~pyro_vlae.evaluate.hierarchy.is_categorical`):
  a softmax over the classes; quality = chance-corrected held-out accuracy
  (acc − p_major) / (1 − p_major).
* ``continuous``: regression on the standardised value; quality = held-out R².
* ``circular`` (a periodic factor in [0, 1), e.g. a hue): regression on (cos 2πv, sin 2πv),
  read back with atan2; quality = R² averaged over the two coordinates.

:func:`reader_for` trains a plugin's reader once and caches it in the user's cache folder
(:func:`~pyro_vlae.data.files.cache_dir`), keyed by the data set, its options, a fingerprint
of the images and factors it trains and is scored on (:func:`fingerprint`: two folders read
by the same plugin get two readers) and :data:`READER_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.base import Data, DatasetPlugin, TensorData
from ..data.files import cache_dir
from ..errors import ConfigError, DataError
from ..progress import Progress, stderr_line
from .hierarchy import is_categorical

logger = logging.getLogger(__name__)

#: bump when the network or its training changes, so cached readers are retrained
READER_VERSION = 1
#: default training steps of a reader (a minute on one CPU thread for MNIST)
READER_STEPS = 3000
#: held-out quality (chance-corrected accuracy or R²) a reader needs for every factor
MIN_READER_QUALITY = 0.9
#: fraction of the training split held out when the data set has no test split
HOLDOUT_FRACTION = 0.1


class ReaderError(DataError):
    """A factor reader that cannot read the factors well enough to measure anything."""


@dataclass
class FactorSpec:
    """One factor as the reader sees it.

    :param name: the factor's name (a column of ``TensorData.factor_names``).
    :param kind: ``"categorical"``, ``"continuous"`` or ``"circular"``.
    :param classes: the class values of a categorical factor, sorted.
    :param mean: mean of a continuous factor on the training data (for standardising).
    :param std: its standard deviation.
    """

    name: str
    kind: str
    classes: list[float] = field(default_factory=list)
    mean: float = 0.0
    std: float = 1.0

    @property
    def outputs(self) -> int:
        return {"categorical": len(self.classes), "continuous": 1, "circular": 2}[self.kind]


def factor_specs(data: TensorData, circular_factors: Sequence[str] = ()) -> list[FactorSpec]:
    """The :class:`FactorSpec` of every factor of ``data``."""
    if data.factors is None:
        raise DataError("the data set has no ground-truth factors to train a reader on")
    specs = []
    for k, name in enumerate(data.factor_names):
        col = data.factors[:, k].double()
        if name in circular_factors:
            specs.append(FactorSpec(name, "circular"))
        elif is_categorical(col.numpy()):
            specs.append(FactorSpec(name, "categorical", classes=sorted(float(c) for c in torch.unique(col))))
        else:
            specs.append(FactorSpec(name, "continuous", mean=float(col.mean()), std=float(col.std()) or 1.0))
    return specs


def reader_network(shape: Sequence[int], outputs: int) -> nn.Module:
    """A small CNN for images ``(C, H, W)``: two stride-2 3×3 convolutions (16, 32 channels),
    a dense layer of 128 units and a linear output; a two-layer MLP of 256 units for flat
    data ``(D,)``. No pooling, so positions stay readable."""
    if len(shape) == 3:
        c, h, w = shape
        h2, w2 = (h + 1) // 2, (w + 1) // 2
        h4, w4 = (h2 + 1) // 2, (w2 + 1) // 2
        return nn.Sequential(
            nn.Conv2d(c, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * h4 * w4, 128), nn.ReLU(), nn.Linear(128, outputs),
        )
    (d,) = shape
    return nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, outputs))


class FactorReader(nn.Module):
    """Reads the ground-truth factors of images (see the module docstring).

    :param shape: shape of one data point.
    :param specs: one :class:`FactorSpec` per factor.
    :param value_range: the data's range; inputs are mapped to [0, 1] and clamped.
    """

    def __init__(self, shape: Sequence[int], specs: Sequence[FactorSpec], value_range=(0.0, 1.0)) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.specs = list(specs)
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.net = reader_network(self.shape, sum(s.outputs for s in self.specs))
        #: held-out quality per factor (chance-corrected accuracy or R²), set by training
        self.quality: dict[str, float] = {}
        #: how it was trained: steps, seconds, points, held-out points
        self.info: dict[str, Any] = {}

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def forward(self, x: Tensor) -> list[Tensor]:
        """The raw outputs for each factor: logits, a standardised value, or (cos, sin)."""
        low, high = self.value_range
        out = self.net(((x - low) / (high - low)).clamp(0, 1))
        return list(out.split([s.outputs for s in self.specs], dim=1))

    @torch.no_grad()
    def read(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """The factors of ``x`` ``(N, F)`` in the data's units: a class value, a value, or a
        phase in [0, 1) for a circular factor."""
        self.eval()
        device = next(self.parameters()).device
        rows = []
        for start in range(0, x.shape[0], batch_size):
            outs = self(x[start : start + batch_size].to(device, torch.float32))
            cols = []
            for spec, out in zip(self.specs, outs):
                if spec.kind == "categorical":
                    cols.append(torch.tensor(spec.classes, device=out.device)[out.argmax(1)])
                elif spec.kind == "continuous":
                    cols.append(out[:, 0] * spec.std + spec.mean)
                else:
                    cols.append(torch.atan2(out[:, 1], out[:, 0]).div(2 * math.pi).remainder(1.0))
            rows.append(torch.stack(cols, dim=1).cpu())
        return torch.cat(rows)

    @torch.no_grad()
    def confidence(self, x: Tensor, batch_size: int = 1000) -> Tensor | None:
        """How sure the reader is of the classes of ``x`` ``(N,)``: the probability of the most
        likely class, the smallest over the categorical factors; ``None`` without one."""
        if not any(s.kind == "categorical" for s in self.specs):
            return None
        self.eval()
        device = next(self.parameters()).device
        rows = []
        for start in range(0, x.shape[0], batch_size):
            outs = self(x[start : start + batch_size].to(device, torch.float32))
            top = [out.softmax(1).amax(1) for s, out in zip(self.specs, outs) if s.kind == "categorical"]
            rows.append(torch.stack(top, dim=1).amin(1).cpu())
        return torch.cat(rows)

    def loss(self, x: Tensor, factors: Tensor) -> Tensor:
        """Cross-entropy for categorical factors plus squared error for the others."""
        total = x.new_zeros(())
        for spec, out, v in zip(self.specs, self(x), factors.T):
            if spec.kind == "categorical":
                target = torch.searchsorted(torch.tensor(spec.classes, device=v.device, dtype=v.dtype), v.contiguous())
                total = total + nn.functional.cross_entropy(out, target)
            else:
                total = total + (out - _regression_target(spec, v)).square().sum(1).mean()
        return total

    @torch.no_grad()
    def score(self, data: TensorData) -> dict[str, float]:
        """Held-out quality per factor on ``data`` (see the module docstring)."""
        pred = self.read(data.x)
        quality = {}
        for k, spec in enumerate(self.specs):
            v, p = data.factors[:, k].double(), pred[:, k].double()
            if spec.kind == "categorical":
                major = float(torch.unique(v, return_counts=True)[1].max()) / len(v)
                acc = float((p == v).double().mean())
                quality[spec.name] = (acc - major) / (1 - major) if major < 1 else 0.0
            else:
                target, out = _regression_target(spec, v), _regression_target(spec, p)
                var = target.var(0, unbiased=False)
                r2 = 1 - (out - target).square().mean(0) / var.clamp_min(1e-12)
                quality[spec.name] = float(r2.mean()) if bool((var > 0).all()) else 0.0
        return quality

    def check(self, min_quality: float = MIN_READER_QUALITY) -> None:
        """Raise :class:`ReaderError` naming every factor read worse than ``min_quality``."""
        bad = {n: q for n, q in self.quality.items() if not q >= min_quality}
        if not self.quality or bad:
            listed = ", ".join(f"{n} {q:.2f}" for n, q in bad.items()) or "none measured"
            raise ReaderError(
                f"the factor reader reads the factors of real held-out images too poorly to measure "
                f"generated ones (quality {listed}; at least {min_quality} needed)",
                self.advice(bad, min_quality),
            )

    def advice(self, bad: Mapping[str, float], min_quality: float) -> str:
        """What would help a reader that reads the factors ``bad`` too poorly: more steps when
        it has not learned its own training images yet; when it has (it fits them, not held-out
        ones), more steps cannot help, only more labelled training images."""
        fitted = self.info.get("train_quality") or {}
        points = self.info.get("train_points")
        if fitted and all(fitted.get(n, 0.0) >= min_quality for n in bad):
            seen = ", ".join(f"{n} {fitted[n]:.2f}" for n in bad)
            return (f"the reader already reads its {points} training images well ({seen}) but not new ones, so "
                    "more --reader-steps will not help: evaluate on a data set with more labelled training "
                    "images (e.g. all of its train split), or measure without it: --no-intervention")
        steps = self.info.get("steps")
        more = f"--reader-steps {2 * steps}" if steps else "more --reader-steps"
        return (f"the reader has not yet learned its own training images: train it longer ({more}), or check "
                "that the data set's factors can be seen in its images")

    # -------------------------------------------------------------- persistence
    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the reader (plain types and tensors)."""
        return {
            "version": READER_VERSION,
            "shape": list(self.shape),
            "specs": [asdict(s) for s in self.specs],
            "value_range": list(self.value_range),
            "quality": dict(self.quality),
            "info": dict(self.info),
            "weights": self.state_dict(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FactorReader:
        reader = cls(state["shape"], [FactorSpec(**s) for s in state["specs"]], state["value_range"])
        reader.load_state_dict(state["weights"])
        reader.quality = dict(state["quality"])
        reader.info = dict(state["info"])
        return reader.eval()


def _regression_target(spec: FactorSpec, v: Tensor) -> Tensor:
    if spec.kind == "circular":
        angle = 2 * math.pi * v
        return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return ((v - spec.mean) / spec.std)[:, None]


def train_reader(
    train: TensorData,
    heldout: TensorData | None = None,
    *,
    circular_factors: Sequence[str] = (),
    value_range: tuple[float, float] = (0.0, 1.0),
    steps: int = READER_STEPS,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> FactorReader:
    """Train a :class:`FactorReader` on ``train`` with Adam (learning rate decayed by cosine
    to 0) and score it on ``heldout`` (default: the last :data:`HOLDOUT_FRACTION` of
    ``train``, then left out of training). Leaves the global random state unchanged."""
    if steps < 1 or batch_size < 2:
        raise ConfigError(f"a reader needs steps >= 1 and batch_size >= 2, got {steps} and {batch_size}")
    if heldout is None:
        cut = len(train) - max(1, int(HOLDOUT_FRACTION * len(train)))
        heldout = TensorData(train.x[cut:], train.factors[cut:], train.factor_names)
        train = TensorData(train.x[:cut], train.factors[:cut], train.factor_names)
    if heldout.factors is None or tuple(heldout.factor_names) != tuple(train.factor_names):
        raise DataError("the held-out data must have the same factors as the training data")
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reader = FactorReader(train.shape, factor_specs(train, circular_factors), value_range).to(device)
    g = torch.Generator().manual_seed(seed)
    optim = torch.optim.Adam(reader.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optim, steps)
    reader.train()
    with Progress(steps, progress, stderr_line, prefix="factor reader step", desc="factor reader") as bar:
        for _ in range(steps):
            idx = torch.randint(len(train), (batch_size,), generator=g)
            loss = reader.loss(train.x[idx].to(device), train.factors[idx].to(device))
            optim.zero_grad()
            loss.backward()
            optim.step()
            schedule.step()
            bar.advance()
    reader.eval()
    reader.quality = reader.score(heldout)
    seen = torch.randperm(len(train), generator=g)[: len(heldout)]  # as many training images as held-out ones
    reader.info = {
        "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "train_points": len(train), "heldout_points": len(heldout),
        "train_quality": reader.score(TensorData(train.x[seen], train.factors[seen], train.factor_names)),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return reader.cpu()


# ------------------------------------------------------------------------ cache
def fingerprint(*splits: TensorData | None) -> str:
    """The size and a SHA-1 of the images and factors of ``splits``: what a reader learns from."""
    digest = hashlib.sha1()
    sizes = []
    for data in splits:
        sizes.append(str(len(data)) if data is not None else "-")
        for t in (data.head(), data.factors) if data is not None else ():
            digest.update(str(tuple(t.shape)).encode())
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return f"{'+'.join(sizes)}:{digest.hexdigest()[:16]}"


def reader_path(plugin: str, options: Mapping[str, Any] | None = None, data: str = "", **training: Any) -> Path:
    """Where the reader of data set ``plugin`` with ``options``, trained on the data of
    :func:`fingerprint` ``data`` (and training settings), is cached:
    ``cache_dir()/readers/PLUGIN-HASH.pt``."""
    key = json.dumps({"plugin": plugin, "options": dict(options or {}), "data": data, "training": training,
                      "version": READER_VERSION}, sort_keys=True, default=str)
    return cache_dir() / "readers" / f"{plugin}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt"


def in_memory(data: Data) -> TensorData | None:
    """``data`` as stored, in memory, with its factors; ``None`` when it has none (a reader
    trains on every point many times over, so a streamed split is read into memory once)."""
    if data.factors is None:
        return None
    stored = data.subset()
    return TensorData(stored.head(), stored.factors, tuple(stored.factor_names))


def reader_for(
    plugin: DatasetPlugin,
    options: Mapping[str, Any] | None = None,
    *,
    steps: int = READER_STEPS,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> FactorReader | None:
    """The factor reader of a data set, trained on its training split (scored on its test
    split, else on a held-out part) on first use and cached (see :func:`reader_path`).
    ``options``: the plugin's options, part of the cache key with the :func:`fingerprint` of
    the data. ``None`` when the data set declares no factors. Training is logged at INFO, a
    cache that cannot be read or written at WARNING."""
    train = in_memory(plugin.load("train"))
    if train is None:
        return None
    heldout = in_memory(plugin.load("test")) if "test" in plugin.splits else None
    path = reader_path(plugin.name, options, data=fingerprint(train, heldout), steps=steps)
    if path.exists():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state.get("version") == READER_VERSION:
                return FactorReader.from_state(state)
        except Exception:  # a cache: whatever makes it unreadable (even random bytes), it is trained again
            pass
        logger.warning(f"the cached factor reader {path} is unreadable or outdated; training it again")
    logger.info(f"training the factor reader of {plugin.name} ({', '.join(train.factor_names)}) for {steps} "
                f"steps; cached in {path}")
    reader = train_reader(train, heldout, circular_factors=plugin.circular_factors, value_range=plugin.value_range,
                          steps=steps, device=device, progress=progress)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        torch.save(reader.state(), partial)
        partial.replace(path)
    except OSError as err:
        logger.warning(f"could not cache the factor reader in {path} ({err}); it will be trained again next time")
    return reader
