"""``pyro-vlae explore``: a local web page to play with one latent layer at a time.

Every layer l has one slider per dimension of its noise ε_l (a 2-D layer has a pad instead:
a picture of its plane that sets both values where it is clicked), the standard-normal variable
of the reparameterisation z_l = μ_l + σ_l ⊙ ε_l (the paper's eq. 15). For the VLAE and the
VAE, whose prior is N(0, I), ε_l is z_l itself; for the Markov hierarchies (HVAE, LVAE)
moving ε_l changes z_l and, through p(z_{l-1} | z_l), the layers below, while their own
noise stays put: the coordinates of the per-layer grids
(:func:`pyro_vlae.diagnostics.layer_variation`), decoded by the same
:meth:`~pyro_vlae.models.base.LatentModel.generate`.

A real image (from the run's test split, or uploaded) is encoded with the guide along its
mean path (:func:`pyro_vlae.encode.posterior`) and turned into ε by
:func:`pyro_vlae.encode.noise_of`; from there each layer can be edited on its own.

The page, :class:`ExplorerPage`, is built with Gradio, an optional extra
(``pip install "pyro-vlae[explore]"``); :class:`Explorer` holds the arithmetic and needs only torch.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision.utils import make_grid

from .encode import images_to_tensor, noise_of, posterior
from .errors import ConfigError, DataError
from .models.base import LatentModel
from .plotting import to_images

logger = logging.getLogger(__name__)

#: pixels the longer side of the generated image is scaled up to (nearest neighbour)
DISPLAY = 192
INSTALL = 'pip install "pyro-vlae[explore]"'
#: decimals of a slider's value
DECIMALS = 2
#: sliders side by side in a layer's panel
PER_ROW = 3
#: pixels of a 2-D layer's pad (odd: its middle pixel is the origin)
PAD = 201


def require_gradio():
    """Import Gradio, or say how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError as err:
        raise ConfigError(
            f"pyro-vlae explore needs Gradio, which is not installed ({err})",
            f"install the optional extra: {INSTALL}",
        ) from None
    return gradio


@dataclass
class Explorer:
    """The state-free arithmetic behind the page: noise ↔ pictures for one model.

    Noise is a mapping ``{"z1": (d1,), ...}`` of one point's ε per layer.

    :param model: a trained model (eval mode is set here).
    :param samples: images in the grid of samples sharing the locked layers.
    :param span: sliders and pads run over [-span, span].
    :param seed: seed of the draws (re-draw buttons and the grid).
    """

    model: LatentModel
    samples: int = 8
    span: float = 3.0
    seed: int = 0
    generator: torch.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.model.eval()
        self.generator = torch.Generator().manual_seed(self.seed)

    @property
    def layers(self) -> tuple[tuple[str, int], ...]:
        """``(("z1", d1), ...)``, z1 nearest to the data."""
        return tuple(zip(self.model.latent_sites, self.model.z_dims))

    def zero(self) -> dict[str, Tensor]:
        return {name: torch.zeros(d) for name, d in self.layers}

    def draw(self, noise: dict[str, Tensor], layers: Sequence[str]) -> dict[str, Tensor]:
        """``noise`` with ε of ``layers`` drawn afresh from N(0, I)."""
        out = dict(noise)
        for name, d in self.layers:
            if name in layers:
                out[name] = torch.randn(d, generator=self.generator)
        return out

    def _decode(self, noise: dict[str, Tensor]) -> Tensor:
        n = next(iter(noise.values())).shape[0]
        device = self.model.device
        return to_images(self.model.generate(n, noise={k: v.to(device) for k, v in noise.items()}), self.value_range)

    @property
    def value_range(self) -> tuple[float, float]:
        """The data's range, read from the model's likelihood."""
        return self.model.likelihood.value_range

    @staticmethod
    def _picture(images: Tensor, scale: int, nrow: int = 1) -> np.ndarray:
        grid = make_grid(images, nrow=nrow, padding=1 if images.shape[0] > 1 else 0, pad_value=1.0)
        grid = torch.nn.functional.interpolate(grid[None], scale_factor=scale, mode="nearest")[0]
        if grid.shape[0] == 1:
            grid = grid.expand(3, -1, -1)
        return (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()

    def _scale(self, images: Tensor) -> int:
        return max(1, DISPLAY // max(images.shape[-2:]))

    def image(self, noise: dict[str, Tensor]) -> np.ndarray:
        """The generated image (the likelihood's mean) at ``noise``, as RGB ``uint8``."""
        images = self._decode({k: v[None] for k, v in noise.items()})
        return self._picture(images, self._scale(images))

    def samples_with(self, noise: dict[str, Tensor], locked: Sequence[str], seed: int) -> Tensor:
        """``samples`` images (in [0, 1]) that keep the ε of the ``locked`` layers and draw
        every other layer from N(0, I) with ``seed``, so they move only with the locked sliders."""
        g = torch.Generator().manual_seed(seed)
        batch = {
            name: noise[name].expand(self.samples, d) if name in locked else torch.randn(self.samples, d, generator=g)
            for name, d in self.layers
        }
        return self._decode(batch)

    def grid(self, noise: dict[str, Tensor], locked: Sequence[str], seed: int) -> np.ndarray:
        """:meth:`samples_with` as one RGB ``uint8`` picture, four to a row."""
        images = self.samples_with(noise, locked, seed)
        return self._picture(images, max(1, self._scale(images) // 2), nrow=min(self.samples, 4))

    @torch.no_grad()
    def encode(self, x: Tensor) -> dict[str, Tensor]:
        """ε of one data point ``x`` (shape ``x_shape``): the guide's mean path, mapped to
        the model's noise by :func:`~pyro_vlae.encode.noise_of`."""
        x = x[None].to(self.model.device)
        z = {name: loc for name, (loc, _) in posterior(self.model, x).items()}
        return {name: eps[0].cpu() for name, eps in noise_of(self.model, z).items()}


# ----------------------------------------------------------------------- the 2-D pad
def pad_reach(point: Sequence[float], span: float) -> float:
    """Half the side of the square a pad shows: ``span``, widened to a whole number that
    holds ``point`` (as a slider widens for an encoded value beyond its range)."""
    return max(span, float(math.ceil(max(abs(float(v)) for v in point))))


def pad_pixel(point: Sequence[float], reach: float, size: int = PAD) -> tuple[float, float]:
    """``(column, row)`` of ``point`` on a pad of ``size`` pixels showing [-reach, reach]²;
    the first value runs right, the second up."""
    scale = (size - 1) / (2 * reach)
    return (float(point[0]) + reach) * scale, (reach - float(point[1])) * scale


def pad_point(pixel: Sequence[float], reach: float, size: int = PAD) -> tuple[float, float]:
    """The layer's two values at ``pixel`` ``(column, row)`` of a pad, rounded as the
    sliders are; the inverse of :func:`pad_pixel`, clamped to the square."""
    scale = 2 * reach / (size - 1)
    values = (float(pixel[0]) * scale - reach, reach - float(pixel[1]) * scale)
    return tuple(round(min(max(v, -reach), reach), DECIMALS) for v in values)


def pad_picture(point: Sequence[float], span: float, size: int = PAD) -> np.ndarray:
    """A pad as RGB ``uint8``: the plane [-reach, reach]² (:func:`pad_reach`) with a line at
    every whole value (every few when widened beyond ±5), the axes darker, and a dot at
    ``point`` (to the controls' precision, so the same values always give the same picture)."""
    point = [round(float(v), DECIMALS) for v in point]
    reach = pad_reach(point, span)
    picture = np.full((size, size, 3), 250, dtype=np.uint8)
    step = 1 if reach <= 5 else math.ceil(reach / 5)  # at most about ten lines a side
    ticks = np.arange(-math.floor(reach / step), math.floor(reach / step) + 1) * step
    for t in ticks:
        column, row = (round(c) for c in pad_pixel((t, t), reach, size))
        shade = 160 if t == 0 else 222
        picture[:, column] = shade
        picture[row, :] = shade
    picture[[0, -1], :] = picture[:, [0, -1]] = 120
    column, row = pad_pixel(point, reach, size)
    rows, columns = np.ogrid[:size, :size]
    distance = np.hypot(rows - row, columns - column)
    picture[(distance < 8) & (distance >= 6)] = (255, 255, 255)
    picture[distance < 6] = (234, 88, 12)
    picture[(distance < 2.2)] = (124, 45, 18)
    return picture


# ----------------------------------------------------------------------- the page
def for_layer(handler: Callable[..., list], name: str | None, event: type | None = None) -> Callable[..., list]:
    """``handler`` with its first argument, the layer ``name``, given: what Gradio calls with
    the page's state. With ``event`` (e.g. ``gr.SelectData``) the call also passes the event's
    data, first, as Gradio does for a parameter annotated with that class."""
    if event is None:

        def fn(*args):
            return handler(name, *args)

        return fn

    def fn(evt, *args):
        return handler(name, evt, *args)

    fn.__annotations__ = {"evt": event}
    return fn


class ExplorerPage:
    """The Gradio page of an :class:`Explorer`: its components are attributes, its event
    handlers methods, and :attr:`app` the page itself (built on construction).

    Every dimension has a control holding its value: a slider, or for a 2-D layer one of the
    two number boxes beside its pad (:func:`pad_picture`), which a click on the pad sets. The
    handlers all receive the page's *state*: every control's value, every lock, and the seed
    of the grid of samples.

    The components, by the part of the page they are in:

    - per layer: ``locks`` (in the layers' order), ``buttons[name]`` (its re-draw button); per 2-D
      layer ``pads[name]`` and ``boxes[name]`` (its two number boxes);
    - ``controls``, every dimension's control in the layers' order (sliders and boxes), and
      ``sliders``, the sliders alone;
    - starting from a real image: ``index`` (of the test point) and ``from_test_button``,
      ``upload`` and ``from_upload_button``, and ``source``, the picture of the image encoded;
    - the pictures: ``image`` (generated), ``redraw_all`` (re-draws every unlocked layer),
      ``grid`` (of samples) and ``status``, the status line;
    - ``seed``, the seed of the grid of samples (a ``gr.State``).

    :param explorer: the arithmetic behind the page.
    :param test_point: ``test_point(i)`` returns test point i (of ``num_test``), if any.
    :param num_test: the number of test points.
    :param title: the page's title and heading.
    :param description: Markdown under the heading.
    """

    locks: list
    buttons: dict[str, Any]
    pads: dict[str, Any]
    boxes: dict[str, list]
    controls: list
    sliders: list
    index: Any
    from_test_button: Any
    upload: Any
    from_upload_button: Any
    source: Any
    image: Any
    redraw_all: Any
    grid: Any
    status: Any
    seed: Any

    def __init__(
        self,
        explorer: Explorer,
        test_point: Callable[[int], Tensor] | None = None,
        num_test: int = 0,
        title: str = "pyro-vlae explore",
        description: str = "",
    ) -> None:
        self.gr = require_gradio()
        self.explorer, self.test_point, self.num_test = explorer, test_point, num_test
        self.layers, self.span = explorer.layers, explorer.span
        self.names = [name for name, _ in self.layers]
        self.pad_layers = [name for name, d in self.layers if d == 2]
        self.num_controls = sum(d for _, d in self.layers)
        self.app = self.build(title, description)

    # ---------------------------------------------------------- state ↔ noise
    def unpack(self, values: Sequence[float]) -> dict[str, Tensor]:
        """The noise held by the controls' ``values``."""
        noise, i = {}, 0
        for name, d in self.layers:
            noise[name] = torch.tensor([float(v) for v in values[i : i + d]])
            i += d
        return noise

    def flat(self, noise: dict[str, Tensor]) -> list[float]:
        """Control values: ε rounded to the controls' step, which is what the page then holds."""
        return [round(float(v), DECIMALS) for name in self.names if name in noise for v in noise[name].tolist()]

    def held(self, noise: dict[str, Tensor]) -> dict[str, Tensor]:
        """``noise`` as the controls hold it."""
        return self.unpack(self.flat(noise))

    def split(self, args: Sequence[Any]) -> tuple[dict[str, Tensor], list[str], int]:
        """The page's state ``args``: the noise, the locked layers and the seed."""
        n, names = self.num_controls, self.names
        values, locks, seed = args[:n], args[n : n + len(names)], args[-1]
        return self.unpack(values), [name for name, on in zip(names, locks) if on], int(seed)

    def pictures(self, noise: dict[str, Tensor], locked: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The generated image and the grid of samples."""
        return self.explorer.image(noise), self.explorer.grid(noise, locked, seed)

    def pad_pictures(self, noise: dict[str, Tensor]) -> list[np.ndarray]:
        """Every pad, its dot at ``noise``."""
        return [pad_picture(noise[name].tolist(), self.span) for name in self.pad_layers]

    # ---------------------------------------------------------- event handlers
    def render(self, *args: Any) -> tuple[np.ndarray, np.ndarray]:
        """A slider moved or a lock changed: the pictures."""
        return self.pictures(*self.split(args))

    def render_pad(self, name: str, *args: Any) -> list:
        """A value typed into a box of ``name``'s pad: the pad and the pictures."""
        noise, locked, seed = self.split(args)
        return [pad_picture(noise[name].tolist(), self.span), *self.pictures(noise, locked, seed)]

    def click_pad(self, name: str, evt: Any, *args: Any) -> list:
        """A click on ``name``'s pad: its two values, the pad and the pictures."""
        noise, locked, seed = self.split(args)
        point = pad_point(evt.index, pad_reach(noise[name].tolist(), self.span))
        noise = {**noise, name: torch.tensor(point)}
        return [*point, pad_picture(point, self.span), *self.pictures(noise, locked, seed)]

    def redraw(self, layer: str | None, *args: Any) -> list:
        """Re-draw ``layer`` (``None``: every layer, and the grid's seed) unless locked: every
        control, the seed, the pads, the pictures and the status line."""
        noise, locked, seed = self.split(args)
        targets = [n for n in ([layer] if layer else self.names) if n not in locked]
        noise = self.held(self.explorer.draw(noise, targets))
        if layer is None:
            seed += 1
        if targets:
            note = f"Re-drew {', '.join(targets)}."
        elif layer:
            note = f"{layer} is locked: unlock it to re-draw."
        else:
            note = "Every layer is locked: nothing to re-draw."
        return [*self.flat(noise), seed, *self.pad_pictures(noise), *self.pictures(noise, locked, seed), note]

    def start_from(self, x: Tensor, what: str, notes: list[str], locked: list[str], seed: int) -> list:
        """Encode the data point ``x`` (``what`` it is): every control, the pads, the image
        encoded, the pictures and the status line (``notes`` added to it)."""
        explorer, span = self.explorer, self.span
        noise = self.held(explorer.encode(x))
        # a slider whose range cannot hold the encoded value is widened to do so (a pad widens itself)
        values, widened = [], []
        for name, _ in self.layers:
            for v in self.flat({name: noise[name]}):
                reach = max(span, math.ceil(abs(v)))
                wide = reach > span
                values.append(self.gr.Slider(value=v, minimum=-reach, maximum=reach)
                              if wide and name not in self.pad_layers else v)
                if wide and name not in widened:
                    widened.append(name)
        if widened:
            notes.append(f"The controls of {', '.join(widened)} were widened to hold the encoded ε.")
        source = explorer._picture(to_images(x[None], explorer.value_range), explorer._scale(x[None]))
        status = " ".join([f"Encoded {what}.", *notes])
        return [*values, *self.pad_pictures(noise), source, *self.pictures(noise, locked, seed), status]

    def from_test(self, index: float | None, *args: Any) -> list:
        """The button "Encode test image": :meth:`start_from` test point ``index``."""
        _, locked, seed = self.split(args)
        if self.test_point is None or self.num_test == 0:
            raise self.gr.Error("this run's data set has no test split: upload an image instead")
        if index is None or not 0 <= int(index) < self.num_test:
            raise self.gr.Error(f"test image {index} does not exist: pick 0 to {self.num_test - 1}")
        return self.start_from(self.test_point(int(index)), f"test image {int(index)}", [], locked, seed)

    def from_upload(self, image: Any, *args: Any) -> list:
        """The button "Encode uploaded image": :meth:`start_from` the PIL ``image``, resized
        and converted to the model's shape (the status line says so)."""
        _, locked, seed = self.split(args)
        if image is None:
            raise self.gr.Error("no image uploaded yet")
        notes: list[str] = []
        try:
            x = images_to_tensor([image], self.explorer.model.x_shape, self.explorer.value_range,
                                 names=["the upload"], echo=lambda m: notes.append(f"{m[0].upper()}{m[1:]}."))[0]
        except DataError as err:
            raise self.gr.Error(str(err)) from None
        return self.start_from(x, "the uploaded image", notes, locked, seed)

    # ---------------------------------------------------------- layout
    def build(self, title: str, description: str):
        """The page: the layers' controls and the real images on the left, the pictures on the right."""
        gr = self.gr
        zero = self.explorer.zero()
        # the first pictures go into the page itself, so it shows them as it opens (a load event
        # answered later left both panels empty for seconds, and swapped the pictures under the user)
        first_image, first_grid = self.pictures(self.unpack(self.flat(zero)), [], self.explorer.seed)
        self.locks, self.buttons, self.pads, self.boxes, self.controls, self.sliders = [], {}, {}, {}, [], []
        with gr.Blocks(title=title, analytics_enabled=False) as app:
            gr.Markdown(f"## {title}\n{description}")
            with gr.Row():
                with gr.Column(scale=3):
                    for name, d in self.layers:
                        self.layer_panel(name, d, self.flat({name: zero[name]}))
                    self.real_image_panel()
                with gr.Column(scale=2):
                    self.pictures_panel(first_image, first_grid)
            self.seed = gr.State(self.explorer.seed)
            self.connect()
        return app

    def layer_panel(self, name: str, d: int, start: list[float]) -> None:
        """Layer ``name`` of ``d`` dimensions: its heading, lock and re-draw button, and its
        pad (``d`` = 2) or sliders, starting at ``start``."""
        gr, pad = self.gr, name in self.pad_layers
        with gr.Group():
            with gr.Row():
                how = " · click the pad to set both" if pad else ""
                gr.Markdown(f"**{name}** · ε of {d} dimension{'s' if d > 1 else ''}{how}")
                self.locks.append(gr.Checkbox(label=f"lock {name}", value=False, elem_id=f"lock-{name}"))
                self.buttons[name] = gr.Button(f"Re-draw {name}", size="sm", elem_id=f"redraw-{name}")
            if pad:
                self.pad(name, start)
            else:
                self.slider_rows(name, d, start)

    def pad(self, name: str, start: list[float]) -> None:
        """The pad of the 2-D layer ``name`` and, beside it, the boxes of its two values."""
        gr = self.gr
        with gr.Row(equal_height=False):
            self.pads[name] = gr.Image(
                pad_picture(start, self.span), format="png", interactive=False,
                label=f"{name}[1] →, {name}[2] ↑", buttons=[], elem_id=f"pad-{name}",
                height=PAD + 40, width=PAD + 16, scale=0, min_width=PAD + 16,
            )
            with gr.Column():
                self.boxes[name] = [
                    gr.Number(value=start[k], label=f"{name}[{k + 1}]",
                              step=10**-DECIMALS, elem_id=f"value-{name}-{k + 1}", min_width=120)
                    for k in range(2)
                ]
        self.controls += self.boxes[name]

    def slider_rows(self, name: str, d: int, start: list[float]) -> None:
        """The sliders of layer ``name``, :data:`PER_ROW` to a row."""
        gr = self.gr
        for row in range(0, d, PER_ROW):
            with gr.Row():
                for k in range(row, min(d, row + PER_ROW)):
                    slider = gr.Slider(
                        -self.span, self.span, value=start[k], step=10**-DECIMALS, label=f"{name}[{k + 1}]",
                        elem_id=f"slider-{name}-{k + 1}", min_width=160,
                    )
                    self.controls.append(slider)
                    self.sliders.append(slider)

    def real_image_panel(self) -> None:
        """Starting from a real image: a test point by its index, or an upload."""
        gr, num_test = self.gr, self.num_test
        with gr.Accordion("Start from a real image", open=True):
            with gr.Row():
                self.index = gr.Number(label=f"test image (0 to {max(num_test - 1, 0)})", value=0, precision=0,
                                       elem_id="test-index", interactive=num_test > 0)
                self.from_test_button = gr.Button("Encode test image", elem_id="encode-test",
                                                  interactive=num_test > 0)
            with gr.Row():
                self.upload = gr.Image(label="or upload an image", type="pil", sources=["upload", "clipboard"],
                                       image_mode=None, elem_id="upload", height=220)  # converted here
                self.source = gr.Image(label="the image encoded", format="png", interactive=False,
                                       elem_id="source", height=220)
            self.from_upload_button = gr.Button("Encode uploaded image", elem_id="encode-upload")

    def pictures_panel(self, first_image: np.ndarray, first_grid: np.ndarray) -> None:
        """The generated image, the button re-drawing every unlocked layer, the grid of samples
        and the status line."""
        gr = self.gr
        self.image = gr.Image(first_image, label="generated", format="png", interactive=False, elem_id="image")
        with gr.Row():
            self.redraw_all = gr.Button("Re-draw unlocked layers", variant="primary", elem_id="redraw-all")
        self.grid = gr.Image(
            first_grid, label=f"{self.explorer.samples} samples: locked layers kept, the others drawn anew",
            format="png", interactive=False, elem_id="grid",
        )
        self.status = gr.Markdown(elem_id="status")

    # ---------------------------------------------------------- events
    def connect(self) -> None:
        """Every event of the page to its handler; each handler receives the page's state."""
        state = [*self.controls, *self.locks, self.seed]
        quiet = {"show_progress": "hidden"}
        pictures = [self.image, self.grid]
        for slider in self.sliders:
            slider.input(self.render, state, pictures, trigger_mode="always_last", **quiet)
        for name, pad in self.pads.items():
            for box in self.boxes[name]:
                box.input(for_layer(self.render_pad, name), state, [pad, *pictures], trigger_mode="always_last",
                          **quiet)
            pad.select(for_layer(self.click_pad, name, self.gr.SelectData), state,
                       [*self.boxes[name], pad, *pictures], **quiet)
        for lock in self.locks:
            lock.change(self.render, state, pictures, **quiet)
        redrawn = [*self.controls, self.seed, *self.pads.values(), *pictures, self.status]
        for name, button in self.buttons.items():
            button.click(for_layer(self.redraw, name), state, redrawn, **quiet)
        self.redraw_all.click(for_layer(self.redraw, None), state, redrawn, **quiet)
        encoded = [*self.controls, *self.pads.values(), self.source, *pictures, self.status]
        self.from_test_button.click(self.from_test, [self.index, *state], encoded, **quiet)
        self.from_upload_button.click(self.from_upload, [self.upload, *state], encoded, **quiet)


def build_app(
    explorer: Explorer,
    test_point: Callable[[int], Tensor] | None = None,
    num_test: int = 0,
    title: str = "pyro-vlae explore",
    description: str = "",
):
    """The Gradio page of ``explorer`` (:class:`ExplorerPage`); ``test_point(i)`` returns test
    point i (of ``num_test``)."""
    return ExplorerPage(explorer, test_point, num_test, title, description).app


def check_port(host: str, port: int) -> int:
    """``port`` if it is free on ``host`` (0: any free port), else a :class:`ConfigError`
    saying whether the port is taken or the address cannot be listened on."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as s:
            s.bind((host, port))
            return s.getsockname()[1]
    except OSError as err:
        if err.errno in (errno.EADDRINUSE, 10048):  # 10048: Windows
            raise ConfigError(
                f"cannot listen on {host}:{port}: {err.strerror or err} (another program uses that port)",
                "pass another --port (or --port 0 for any free one), or stop the program using it",
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port}: {err.strerror or err} (not an address of this machine)",
            "pass another --host: 127.0.0.1 (this machine only) or 0.0.0.0 (your network)",
        ) from None


def serve(
    run: str | Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    samples: int = 8,
    span: float = 3.0,
    seed: int = 0,
    block: bool = True,
):
    """Load the run folder ``run`` and serve its explorer on ``http://host:port`` (the address
    is logged at INFO).

    With ``block`` this returns when interrupted (Ctrl+C); otherwise it returns the running
    Gradio app and its address (stop it with ``app.close()``)."""
    require_gradio()
    from .plugins import load_data
    from .run_folder import load_run

    port = check_port(host, port)
    loaded = load_run(run, device)
    explorer = Explorer(loaded.model, samples, span, seed)
    test_point, num_test = None, 0
    if "test" in loaded.plugin.splits:
        test = load_data(loaded.plugin, "test")

        def test_point(i: int) -> Tensor:
            return test.subset(torch.tensor([i])).head()[0]

        num_test = len(test)
    c = loaded.config
    description = (
        f"`{loaded.path}`: {c.model} on {c.plugin}, z_dims {list(loaded.model.z_dims)}, step {loaded.step}. "
        "Each slider is one dimension of a layer's noise ε (for a VLAE or VAE, the code z itself), and a "
        "2-D layer's pad both: click it to set them; "
        "a locked layer keeps its values when the others are re-drawn."
    )
    app = build_app(explorer, test_point, num_test, f"pyro-vlae explore · {loaded.path.name}", description)
    try:
        app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, inbrowser=False,
                   show_error=True, ssr_mode=False)
    except OSError as err:
        raise ConfigError(f"cannot serve on {host}:{port}: {err}", "pass another --port") from None
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    logger.info(f"pyro-vlae explore: {loaded.path} at {url}" + ("  (Ctrl+C stops)" if block else ""))
    if not block:
        return app, url
    try:
        app.block_thread()
    finally:
        app.close()
    return app, url


