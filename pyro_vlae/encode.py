"""Features out of a trained model: per-layer posterior parameters of the guide.

:func:`encode` turns data into ``{"z1_loc": (N, d1), "z1_scale": (N, d1), ...}``: the
location and scale of each layer's Gaussian q(z_l | ·) (eqs. 12–13 for the VLAE). For a
mean-field guide (VLAE, VAE) these are q(z_l | x) exactly. A Markov guide draws each layer
given another one (HVAE: q(z_l | z_{l-1}), bottom-up; LVAE: q(z_l | z_{l+1}, x), top-down);
there the guide is run along its *mean path*, every layer taking the mean of the one it
conditions on, so the features are a deterministic function of x.

:func:`noise_of` maps codes z to the standard-normal noise ε of the model's
reparameterisation z_l = μ_l + σ_l ⊙ ε_l (the paper's eq. 15), the coordinates that
:meth:`~pyro_vlae.models.base.LatentModel.generate` takes as ``noise`` and in which the
per-layer grids and the explorer edit one layer while keeping the others.

:func:`load_inputs` reads what ``pyro-vlae encode`` accepts: a split of the run's data set,
a folder of images, or a ``.npy``/``.pt`` tensor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger
from torch import Tensor

from .atomic import atomic_write, make_folder
from .data.base import Data, TensorData
from .data.images import describe_unreadable, eight_bits, find_unreadable, list_images, open_image
from .errors import ConfigError, DataError
from .models.base import LatentModel
from .progress import Progress
from .run_folder import check_not_run_files

logger = logging.getLogger(__name__)


class MeanPath(Messenger):
    """Sets the sample sites ``sites`` to their distribution's mean instead of a draw, so a
    guide that conditions one layer on another runs deterministically."""

    def __init__(self, sites: Sequence[str]) -> None:
        super().__init__()
        self.sites = frozenset(sites)

    def _pyro_sample(self, msg) -> None:
        if msg["name"] in self.sites and not msg["is_observed"] and msg["value"] is None:
            msg["value"] = msg["fn"].mean


def select_layers(model: LatentModel, layers: Sequence[int] | None) -> tuple[str, ...]:
    """The site names of ``layers`` (1-based; all by default), refusing a layer the model lacks."""
    if not layers:
        return model.latent_sites
    bad = [layer for layer in layers if not 1 <= layer <= model.num_layers]
    if bad:
        raise ConfigError(
            f"layer {bad[0]} does not exist; the model has layers 1..{model.num_layers}",
            f"pass --layers between 1 and {model.num_layers}, e.g. --layers {model.num_layers}",
        )
    return tuple(model.latent_sites[layer - 1] for layer in dict.fromkeys(layers))


@torch.no_grad()
def posterior(model: LatentModel, x: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
    """``{"z1": (loc, scale), ...}`` of the guide on a batch ``x``, along its mean path."""
    model.check_shape(x)
    trace = poutine.trace(MeanPath(model.latent_sites)(model.guide)).get_trace(x)
    out = {}
    for name in model.latent_sites:
        fn = trace.nodes[name]["fn"]
        out[name] = (fn.mean, fn.stddev)
    return out


@torch.no_grad()
def noise_of(model: LatentModel, z: dict[str, Tensor]) -> dict[str, Tensor]:
    """The noise ε_l = (z_l − μ_l) / σ_l of every layer, where N(μ_l, σ_l²) is the prior
    p(z_l | parents) at the given codes ``z`` (all layers, ``{"z1": (B, d1), ...}``).
    ``model.generate(B, noise=noise_of(model, z))`` decodes ``z`` again."""
    batch = next(iter(z.values())).shape[0]
    trace = poutine.trace(poutine.condition(model.model, data=z)).get_trace(batch_size=batch)
    noise = {}
    for name in model.latent_sites:
        fn = trace.nodes[name]["fn"]
        noise[name] = (z[name] - fn.mean) / fn.stddev
    return noise


def _batches(data: Tensor | Data, batch_size: int) -> tuple[int, Iterator[Tensor]]:
    if torch.is_tensor(data):
        data = TensorData(data)
    return len(data), data.batches(batch_size)


@torch.no_grad()
def encode(
    model: LatentModel,
    data: Tensor | Data,
    layers: Sequence[int] | None = None,
    batch_size: int = 256,
    progress: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Tensor]:
    """Per-layer posterior parameters of ``data``, batch by batch, on the CPU::

        {"z1_loc": (N, d1), "z1_scale": (N, d1), "z2_loc": ..., ...}

    ``layers`` (1-based) selects layers; the model runs in eval mode on its device. With
    ``progress``, a bar counts points (off a terminal: a line to ``echo`` every tenth of the data).
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}", "pass --batch-size 256")
    sites = select_layers(model, layers)
    was_training = model.training
    model.eval()
    parts: dict[str, list[Tensor]] = {f"{s}_{k}": [] for s in sites for k in ("loc", "scale")}
    total, batches = _batches(data, batch_size)
    every = max(1, math.ceil(math.ceil(total / batch_size) / 10))  # batches between two lines
    try:
        with Progress(total, progress, echo, unit="point", prefix="encode", desc="encode") as bar:
            for i, x in enumerate(batches, start=1):
                params = posterior(model, x.to(model.device))
                for s in sites:
                    parts[f"{s}_loc"].append(params[s][0].float().cpu())
                    parts[f"{s}_scale"].append(params[s][1].float().cpu())
                done = bar.done + x.shape[0]
                bar.update(x.shape[0], "" if i % every == 0 or done >= total else None)
    finally:
        model.train(was_training)
    return {key: torch.cat(value) for key, value in parts.items()}


def encode_run(
    run: str | Path,
    source: str = "test",
    layers: Sequence[int] | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Tensor | list[str]]:
    """:func:`encode` for a run folder: ``source`` is a split of its data set, a folder of
    images or a ``.npy``/``.pt`` file (see :func:`load_inputs`). The features come with
    ``index`` (each row's position in the split or tensor, or in the sorted folder) and, for
    image files, ``path`` (each row's path below the folder), so rows can be matched to data.
    What is encoded is logged at INFO; ``echo`` receives the progress lines (default: ``print``)."""
    from .run_folder import load_run

    loaded = load_run(run, device)
    select_layers(loaded.model, layers)  # refuse a missing layer before reading any data
    data, what, names = load_inputs(source, loaded)
    logger.info(f"encoding {what} with the {loaded.config.model} of {loaded.path} (step {loaded.step})")
    features: dict[str, Tensor | list[str]] = {
        **encode(loaded.model, data, layers, batch_size, progress, echo or print)
    }
    features["index"] = torch.arange(len(data))
    if names is not None:
        features["path"] = names
    return features


# ------------------------------------------------------------------- inputs
def image_mode(x_shape: Sequence[int]) -> tuple[str, tuple[int, int]]:
    """PIL mode and (width, height) a model's data points are read as, refusing flat data
    that is not a square grey image."""
    if len(x_shape) == 3 and x_shape[0] in (1, 3):
        return ("L" if x_shape[0] == 1 else "RGB"), (x_shape[2], x_shape[1])
    side = int(round(x_shape[0] ** 0.5)) if len(x_shape) == 1 else 0
    if len(x_shape) == 1 and side * side == x_shape[0]:
        return "L", (side, side)
    raise DataError(
        f"this model reads data points of shape {tuple(x_shape)}, which are not images",
        "pass a .npy or .pt tensor of that shape instead",
    )


def images_to_tensor(
    images: Sequence, x_shape: Sequence[int], value_range: tuple[float, float] = (0.0, 1.0),
    echo: Callable[[str], None] | None = None, names: Sequence[str] | None = None,
) -> Tensor:
    """PIL images → a batch shaped like the model's data, in its ``value_range``.

    An image of another size is resized to the model's (bilinear) and one of another colour
    mode is converted (RGB → grey or grey → RGB, 16-bit grey scaled to 8 bits by
    :func:`eight_bits`); each change is announced through ``echo`` (default: this module's
    logger, at WARNING).
    """
    from PIL import Image

    mode, size = image_mode(x_shape)
    low, high = value_range
    out, resized, converted = [], [], []
    for i, image in enumerate(images):
        name = names[i] if names is not None else f"image {i}"
        if image.mode != mode:
            converted.append((name, image.mode))
            image = eight_bits(image, name)
            try:
                image = image.convert(mode)
            except (ValueError, OSError) as err:
                raise DataError(f"cannot convert {name} from {image.mode} to {mode}: {err}", "save it as PNG") from err
        if image.size != size:
            resized.append((name, image.size))
            image = image.resize(size, Image.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
        t = torch.from_numpy(array.copy())
        t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
        out.append(low + (high - low) * t.reshape(x_shape))
    echo = echo or logger.warning
    if converted:
        name, was = converted[0]
        echo(f"converted {len(converted)} image(s) to {mode} for this model (e.g. {name}: {was})")
    if resized:
        name, was = resized[0]
        echo(
            f"resized {len(resized)} image(s) to {size[0]}×{size[1]}, the model's input size "
            f"(e.g. {name}: {was[0]}×{was[1]})"
        )
    if not out:
        return torch.empty(0, *x_shape)
    return torch.stack(out)


def read_images(
    folder: str | Path, x_shape: Sequence[int], value_range: tuple[float, float] = (0.0, 1.0)
) -> tuple[Tensor, list[str]]:
    """Every image below ``folder`` (:func:`~pyro_vlae.data.images.list_images`: sorted by
    path, hidden files left out) as a batch for the model, and the relative paths in the same
    order (see :func:`images_to_tensor` for sizes and modes). Files that cannot be read are
    all listed in one :class:`DataError`."""
    folder = Path(folder)
    paths = list_images(folder)
    bad = find_unreadable(paths)
    if bad:
        raise DataError(
            f"{len(bad)} of the {len(paths)} image files in {folder} cannot be read:\n"
            + describe_unreadable(bad, folder),
            "replace or remove them, then encode the folder again",
        )
    names = [str(p.relative_to(folder)) for p in paths]
    images = [open_image(path) for path in paths]
    return images_to_tensor(images, x_shape, value_range, names=names), names


def read_tensor(path: str | Path, x_shape: Sequence[int]) -> Tensor:
    """A ``.npy`` array or ``.pt`` tensor of data points shaped ``(N, *x_shape)`` (a single
    point of shape ``x_shape`` is taken as N = 1). Any other shape is refused."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            x = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            x = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(
            f"cannot read {path} ({type(err).__name__}: {err})", "pass a .npy array or a torch.save'd tensor"
        ) from err
    if not torch.is_tensor(x):
        raise DataError(f"{path} holds a {type(x).__name__}, not a tensor", "save one tensor with torch.save(x, path)")
    x_shape = tuple(x_shape)
    if tuple(x.shape) == x_shape:
        x = x[None]
    if tuple(x.shape[1:]) != x_shape:
        raise DataError(
            f"{path} holds data of shape {tuple(x.shape)}, but the model reads (N, {', '.join(map(str, x_shape))})",
            "reshape the data to that shape (tensors are not resized; an image folder is)",
        )
    if not x.is_floating_point():
        raise DataError(f"{path} holds {x.dtype} values, not floating point", "scale them to the data set's range")
    if len(x) == 0:
        raise DataError(f"{path} holds no data points (shape {tuple(x.shape)})", "pass at least one")
    return x.float()


def load_inputs(source: str, loaded) -> tuple[Tensor | Data, str, list[str] | None]:
    """What to encode, a short description and, for image files, their paths below the folder:
    ``source`` is a split of the run's data set (``train``, ``test``), a folder of images, or a
    ``.npy``/``.pt`` file."""
    from .data.image_folder import ImageFolder

    path = Path(source)
    if source in loaded.plugin.splits and not path.exists():
        from .plugins import load_data

        data = load_data(loaded.plugin, source)
        names = None
        if isinstance(loaded.plugin, ImageFolder):
            names = [str(p.relative_to(loaded.plugin.root)) for p in loaded.plugin.split(source)]
        return data, f"the {source} split of {loaded.config.plugin}", names
    x_shape = loaded.model.x_shape
    if path.is_dir():
        x, names = read_images(path, x_shape, loaded.model.likelihood.value_range)
        return x, f"{len(names)} images in {path}", names
    if path.is_file() and path.suffix in (".npy", ".pt"):
        x = read_tensor(path, x_shape)
        loaded.model.check_data(x)  # finite, and in the range the model was trained on
        return x, str(path), None
    raise ConfigError(
        f"{source!r} is neither a split of {loaded.config.plugin} ({', '.join(loaded.plugin.splits)}), "
        "a folder of images, nor a .npy/.pt file",
        "pass e.g. --split test, --images FOLDER or --tensor FILE.npy",
    )


def save_features(features: dict[str, Tensor | list[str]], out: str | Path) -> list[Path]:
    """Write ``features`` as ``OUT.npz`` (numpy; ``path`` as an array of strings, readable
    without pickle) and ``OUT.pt`` (torch; ``path`` as a list), each atomically
    (:func:`~pyro_vlae.atomic.atomic_write`); a file of a run folder is never replaced."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix in (".npz", ".pt") else out
    targets = [base.with_name(base.name + suffix) for suffix in (".npz", ".pt")]
    check_not_run_files(targets)
    make_folder(base.parent)
    with atomic_write(targets[0]) as npz, atomic_write(targets[1]) as pt:  # both written before either replaces
        np.savez(npz, **{k: v.numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in features.items()})
        torch.save(features, pt)
    return targets
