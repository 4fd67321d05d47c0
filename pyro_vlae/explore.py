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

The page is built with Gradio, an optional extra (``pip install "pyro-vlae[explore]"``);
:class:`Explorer` holds the arithmetic and needs only torch.
"""

from __future__ import annotations

import errno
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
def build_app(
    explorer: Explorer,
    test_point: Callable[[int], Tensor] | None = None,
    num_test: int = 0,
    title: str = "pyro-vlae explore",
    description: str = "",
):
    """The Gradio page of ``explorer``; ``test_point(i)`` returns test point i (of ``num_test``).

    Every dimension has a control holding its value: a slider, or for a 2-D layer one of the
    two number boxes beside its pad (:func:`pad_picture`), which a click on the pad sets."""
    gr = require_gradio()
    layers, span = explorer.layers, explorer.span
    names = [name for name, _ in layers]
    pads = [name for name, d in layers if d == 2]
    x_shape = explorer.model.x_shape

    def unpack(values: Sequence[float]) -> dict[str, Tensor]:
        noise, i = {}, 0
        for name, d in layers:
            noise[name] = torch.tensor([float(v) for v in values[i : i + d]])
            i += d
        return noise

    def flat(noise: dict[str, Tensor]) -> list[float]:
        """Control values: ε rounded to the controls' step, which is what the page then holds."""
        return [round(float(v), DECIMALS) for name in names if name in noise for v in noise[name].tolist()]

    def held(noise: dict[str, Tensor]) -> dict[str, Tensor]:
        return unpack(flat(noise))

    num_controls = sum(d for _, d in layers)

    def split(args: Sequence[Any]) -> tuple[dict[str, Tensor], list[str], int]:
        values, locks, seed = args[:num_controls], args[num_controls : num_controls + len(names)], args[-1]
        return unpack(values), [n for n, on in zip(names, locks) if on], int(seed)

    def pictures(noise, locked, seed):
        return explorer.image(noise), explorer.grid(noise, locked, seed)

    def pad_pictures(noise: dict[str, Tensor]) -> list[np.ndarray]:
        return [pad_picture(noise[name].tolist(), span) for name in pads]

    def render(*args):
        return pictures(*split(args))

    def render_pad(name: str):
        def fn(*args):
            noise, locked, seed = split(args)
            return [pad_picture(noise[name].tolist(), span), *pictures(noise, locked, seed)]

        return fn

    def click_pad(name: str):
        def fn(evt, *args):
            noise, locked, seed = split(args)
            point = pad_point(evt.index, pad_reach(noise[name].tolist(), span))
            noise = {**noise, name: torch.tensor(point)}
            return [*point, pad_picture(point, span), *pictures(noise, locked, seed)]

        fn.__annotations__ = {"evt": gr.SelectData}  # Gradio passes the click by this annotation
        return fn

    def redraw(layer: str | None):
        def fn(*args):
            noise, locked, seed = split(args)
            targets = [n for n in ([layer] if layer else names) if n not in locked]
            noise = held(explorer.draw(noise, targets))
            if layer is None:
                seed += 1
            if targets:
                note = f"Re-drew {', '.join(targets)}."
            elif layer:
                note = f"{layer} is locked: unlock it to re-draw."
            else:
                note = "Every layer is locked: nothing to re-draw."
            return [*flat(noise), seed, *pad_pictures(noise), *pictures(noise, locked, seed), note]

        return fn

    def start_from(x: Tensor, what: str, notes: list[str], locked: list[str], seed: int):
        noise = held(explorer.encode(x))
        # a slider whose range cannot hold the encoded value is widened to do so (a pad widens itself)
        values, widened = [], []
        for name, _ in layers:
            for v in flat({name: noise[name]}):
                reach = max(span, math.ceil(abs(v)))
                values.append(gr.Slider(value=v, minimum=-reach, maximum=reach) if reach > span and name not in pads
                              else v)
                if reach > span and name not in widened:
                    widened.append(name)
        if widened:
            notes.append(f"The controls of {', '.join(widened)} were widened to hold the encoded ε.")
        source = explorer._picture(to_images(x[None], explorer.value_range), explorer._scale(x[None]))
        status = " ".join([f"Encoded {what}.", *notes])
        return [*values, *pad_pictures(noise), source, *pictures(noise, locked, seed), status]

    def from_test(index, *args):
        _, locked, seed = split(args)
        if test_point is None or num_test == 0:
            raise gr.Error("this run's data set has no test split: upload an image instead")
        if index is None or not 0 <= int(index) < num_test:
            raise gr.Error(f"test image {index} does not exist: pick 0 to {num_test - 1}")
        return start_from(test_point(int(index)), f"test image {int(index)}", [], locked, seed)

    def from_upload(image, *args):
        _, locked, seed = split(args)
        if image is None:
            raise gr.Error("no image uploaded yet")
        notes: list[str] = []
        try:
            x = images_to_tensor([image], x_shape, explorer.value_range, names=["the upload"],
                                 echo=lambda m: notes.append(f"{m[0].upper()}{m[1:]}."))[0]
        except DataError as err:
            raise gr.Error(str(err)) from None
        return start_from(x, "the uploaded image", notes, locked, seed)

    zero = explorer.zero()
    start = flat(zero)
    # the first pictures go into the page itself, so it shows them as it opens (a load event
    # answered later left both panels empty for seconds, and swapped the pictures under the user)
    first_image, first_grid = pictures(unpack(start), [], explorer.seed)
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}\n{description}")
        controls, locks, buttons, pad_images, boxes = [], [], {}, {}, {}
        with gr.Row():
            with gr.Column(scale=3):
                i = 0
                for name, d in layers:
                    with gr.Group():
                        with gr.Row():
                            how = " · click the pad to set both" if name in pads else ""
                            gr.Markdown(f"**{name}** · ε of {d} dimension{'s' if d > 1 else ''}{how}")
                            locks.append(gr.Checkbox(label=f"lock {name}", value=False, elem_id=f"lock-{name}"))
                            buttons[name] = gr.Button(f"Re-draw {name}", size="sm", elem_id=f"redraw-{name}")
                        if name in pads:
                            with gr.Row(equal_height=False):
                                pad_images[name] = gr.Image(
                                    pad_picture(zero[name].tolist(), span), format="png", interactive=False,
                                    label=f"{name}[1] →, {name}[2] ↑", buttons=[], elem_id=f"pad-{name}",
                                    height=PAD + 40, width=PAD + 16, scale=0, min_width=PAD + 16,
                                )
                                with gr.Column():
                                    boxes[name] = [
                                        gr.Number(value=start[i + k], label=f"{name}[{k + 1}]",
                                                  step=10**-DECIMALS, elem_id=f"value-{name}-{k + 1}", min_width=120)
                                        for k in range(2)
                                    ]
                            controls += boxes[name]
                            i += 2
                            continue
                        for row in range(0, d, PER_ROW):
                            with gr.Row():
                                for k in range(row, min(d, row + PER_ROW)):
                                    controls.append(gr.Slider(
                                        -span, span, value=start[i], step=10**-DECIMALS, label=f"{name}[{k + 1}]",
                                        elem_id=f"slider-{name}-{k + 1}", min_width=160,
                                    ))
                                    i += 1
                with gr.Accordion("Start from a real image", open=True):
                    with gr.Row():
                        index = gr.Number(label=f"test image (0 to {max(num_test - 1, 0)})", value=0, precision=0,
                                          elem_id="test-index", interactive=num_test > 0)
                        from_test_button = gr.Button("Encode test image", elem_id="encode-test",
                                                     interactive=num_test > 0)
                    with gr.Row():
                        upload = gr.Image(label="or upload an image", type="pil", sources=["upload", "clipboard"],
                                          image_mode=None, elem_id="upload", height=220)  # converted here
                        source = gr.Image(label="the image encoded", format="png", interactive=False,
                                          elem_id="source", height=220)
                    from_upload_button = gr.Button("Encode uploaded image", elem_id="encode-upload")
            with gr.Column(scale=2):
                image = gr.Image(first_image, label="generated", format="png", interactive=False, elem_id="image")
                with gr.Row():
                    redraw_all = gr.Button("Re-draw unlocked layers", variant="primary", elem_id="redraw-all")
                grid = gr.Image(
                    first_grid, label=f"{explorer.samples} samples: locked layers kept, the others drawn anew",
                    format="png", interactive=False, elem_id="grid",
                )
                status = gr.Markdown(elem_id="status")
        seed = gr.State(explorer.seed)
        state = [*controls, *locks, seed]
        in_pads = {id(box) for pair in boxes.values() for box in pair}
        for control in controls:
            if id(control) not in in_pads:
                control.input(render, state, [image, grid], show_progress="hidden", trigger_mode="always_last")
        for name, pad in pad_images.items():
            for box in boxes[name]:
                box.input(render_pad(name), state, [pad, image, grid], show_progress="hidden",
                          trigger_mode="always_last")
            pad.select(click_pad(name), state, [*boxes[name], pad, image, grid], show_progress="hidden")
        for lock in locks:
            lock.change(render, state, [image, grid], show_progress="hidden")
        shown = [*pad_images.values(), image, grid, status]
        for name, button in buttons.items():
            button.click(redraw(name), state, [*controls, seed, *shown], show_progress="hidden")
        redraw_all.click(redraw(None), state, [*controls, seed, *shown], show_progress="hidden")
        out = [*controls, *pad_images.values(), source, image, grid, status]
        from_test_button.click(from_test, [index, *state], out, show_progress="hidden")
        from_upload_button.click(from_upload, [upload, *state], out, show_progress="hidden")
    return app


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
    echo: Callable[[str], None] = print,
):
    """Load the run folder ``run`` and serve its explorer on ``http://host:port``.

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
    echo(f"pyro-vlae explore: {loaded.path} at {url}" + ("  (Ctrl+C stops)" if block else ""))
    if not block:
        return app, url
    try:
        app.block_thread()
    finally:
        app.close()
    return app, url


