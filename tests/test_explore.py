"""The explorer: its arithmetic for every model, its errors, and the page in a real browser."""

import importlib.util
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from io import BytesIO

import numpy as np
import pytest
import torch
from conftest import fit_args, run

from pyro_vlae.encode import noise_of, posterior
from pyro_vlae.errors import ConfigError
from pyro_vlae.explore import Explorer, check_port, pad_picture, pad_pixel, pad_point, pad_reach, require_gradio
from pyro_vlae.models import build_model

MODELS = ["vlae", "hvae", "lvae", "vae"]
SMALL = fit_args()


def tiny(name):
    torch.manual_seed(0)
    return build_model(name, (1, 28, 28), (2, 3, 2), None, "auto", 0.125).eval()


@pytest.mark.parametrize("name", MODELS)
def test_noise_decodes_the_encoded_code(name):
    """ε from noise_of, fed to generate(noise=...), gives the image of z itself, for every model."""
    model = tiny(name)
    x = torch.rand(3, 1, 28, 28)
    z = {site: loc for site, (loc, _) in posterior(model, x).items()}
    eps = noise_of(model, z)
    assert torch.allclose(model.generate(3, noise=eps), model.generate(3, fixed=z), atol=1e-5)
    if name in ("vlae", "vae"):  # an N(0, I) prior: ε is z
        assert all(torch.allclose(eps[s], z[s]) for s in z)


@pytest.mark.parametrize("name", MODELS)
def test_explorer_image_follows_noise_and_grid_keeps_locked_layers(name):
    ex = Explorer(tiny(name), samples=6, seed=1)
    noise = ex.draw(ex.zero(), [n for n, _ in ex.layers])
    first = ex.image(noise)
    assert first.dtype == np.uint8 and first.shape[-1] == 3 and first.shape[0] >= 28
    assert np.array_equal(first, ex.image(dict(noise)))  # same controls, same picture
    moved = {**noise, "z1": noise["z1"] + 2.0}
    assert not np.array_equal(first, ex.image(moved))
    assert ex.grid(noise, ["z1"], seed=5).dtype == np.uint8

    decoded = []
    ex._decode = lambda batch: decoded.append(batch) or torch.zeros(6, 1, 28, 28)  # the ε the grid decodes
    everything = [n for n, _ in ex.layers]
    ex.samples_with(noise, everything, seed=5)
    assert all(torch.equal(decoded[-1][n], noise[n].expand(6, -1)) for n in everything)  # all locked: one picture
    ex.samples_with(noise, ["z1"], seed=5)
    held = decoded[-1]
    assert torch.equal(held["z1"], noise["z1"].expand(6, -1))
    assert all(not torch.equal(held[n][1:], held[n][:1].expand(5, -1)) for n in everything[1:])  # the rest drawn
    ex.samples_with(moved, ["z1"], seed=5)
    assert torch.equal(decoded[-1]["z1"], moved["z1"].expand(6, -1))  # a locked slider moves the grid
    assert all(torch.equal(decoded[-1][n], held[n]) for n in everything[1:])  # the same draws for the same seed
    ex.samples_with(moved, [], seed=5)
    assert not torch.equal(decoded[-1]["z1"], moved["z1"].expand(6, -1))  # unlocked: its slider is not used


def test_explorer_encodes_a_point_to_the_reconstruction():
    model = tiny("hvae")
    ex = Explorer(model)
    x = torch.rand(1, 28, 28)
    eps = ex.encode(x)
    z = {site: loc for site, (loc, _) in posterior(model, x[None]).items()}
    assert torch.allclose(model.generate(1, noise={k: v[None] for k, v in eps.items()}), model.generate(1, fixed=z),
                          atol=1e-5)


def test_pad_maps_pixels_to_values_and_back():
    """A 2-D layer's pad: the clicked pixel gives the two values (first →, second ↑), the
    square widens to hold a value beyond the span, and the dot is drawn where the value is."""
    assert pad_point((100, 100), 3.0) == (0.0, 0.0)  # the middle pixel is the origin
    assert pad_point((0, 0), 3.0) == (-3.0, 3.0) and pad_point((200, 200), 3.0) == (3.0, -3.0)
    assert pad_point((250, -9), 3.0) == (3.0, 3.0)  # clamped to the square
    for point in [(1.5, -2.25), (0.37, 1.11), (-2.9, 0.04)]:
        assert pad_point(pad_pixel(point, 3.0), 3.0) == pytest.approx(point)
    assert pad_reach((0.5, -1.0), 3.0) == 3.0 and pad_reach((4.2, 0.0), 3.0) == 5.0
    picture = pad_picture((1.5, -1.5), 3.0)
    assert picture.shape == (201, 201, 3) and picture.dtype == np.uint8
    column, row = (round(c) for c in pad_pixel((1.5, -1.5), 3.0))
    assert tuple(picture[row, column]) != tuple(picture[40, 40])  # the dot, on the plain background
    assert not np.array_equal(picture, pad_picture((0.0, 0.0), 3.0))
    assert np.array_equal(pad_picture((4.2, 0.0), 3.0), pad_picture((4.2, 0.0), 5.0))  # widened to ±5


def test_page_names_its_components_and_its_handlers_answer_without_a_browser():
    """ExplorerPage's components and handlers, called as Gradio calls them, with a tiny model:
    z1 and z3 (2-D) get pads, z2 (3-D) sliders."""
    gr = pytest.importorskip("gradio", reason='the explorer needs Gradio: pip install "pyro-vlae[explore]"')
    from types import SimpleNamespace

    from pyro_vlae.explore import ExplorerPage

    page = ExplorerPage(Explorer(tiny("hvae"), samples=4), lambda i: torch.rand(1, 28, 28), num_test=3)
    assert list(page.pads) == ["z1", "z3"] and list(page.buttons) == ["z1", "z2", "z3"]
    assert [s.elem_id for s in page.sliders] == ["slider-z2-1", "slider-z2-2", "slider-z2-3"]
    assert [c.elem_id for c in page.controls][:2] == ["value-z1-1", "value-z1-2"] and len(page.controls) == 7
    assert (page.image.elem_id, page.grid.elem_id, page.status.elem_id) == ("image", "grid", "status")

    values = [0.0] * 7
    state = [*values, True, True, True, 0]  # every layer locked, seed 0
    out = page.redraw(None, *state)
    assert out[:7] == values and out[7] == 1 and out[-1] == "Every layer is locked: nothing to re-draw."
    out = page.redraw("z2", *values, False, False, False, 0)
    assert out[:2] == [0.0, 0.0] and out[2:5] != [0.0, 0.0, 0.0] and out[-1] == "Re-drew z2."
    clicked = page.click_pad("z1", SimpleNamespace(index=(150, 50)), *state)
    assert clicked[:2] == [1.5, 1.5] and np.array_equal(clicked[2], pad_picture((1.5, 1.5), 3.0))
    encoded = page.from_test(2, *state)
    assert encoded[-1].startswith("Encoded test image 2.") and len(encoded) == 7 + 2 + 1 + 2 + 1
    with pytest.raises(gr.Error, match="test image 3 does not exist: pick 0 to 2"):
        page.from_test(3, *state)


def test_port_in_use_is_one_clear_message():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*in use"):
            check_port("127.0.0.1", port)
    assert check_port("127.0.0.1", 0) > 0
    with pytest.raises(ConfigError, match="not an address of this machine") as caught:
        check_port("no such host.invalid", 0)
    assert "--host" in caught.value.fix


def test_explore_on_a_port_in_use_is_one_message_and_exit_1(tmp_path):
    pytest.importorskip("gradio", reason='the explorer needs Gradio: pip install "pyro-vlae[explore]"')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run("explore", str(tmp_path), "--port", str(port))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"127.0.0.1:{port}" in r.output and "another program uses that port" in r.output and "--port" in r.output
    assert list(tmp_path.iterdir()) == []


def test_without_gradio_explore_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio → ImportError
    with pytest.raises(ConfigError, match=r'pip install "pyro-vlae\[explore\]"'):
        require_gradio()
    r = run("explore", str(tmp_path))
    assert r.exit_code == 1 and 'pip install "pyro-vlae[explore]"' in r.output and "Traceback" not in r.output


def test_explore_refuses_a_folder_that_is_not_a_run(tmp_path):
    pytest.importorskip("gradio", reason='the explorer needs Gradio: pip install "pyro-vlae[explore]"')
    r = run("explore", str(tmp_path), "--port", "0")
    assert r.exit_code == 1 and "no checkpoint" in r.output and "Traceback" not in r.output


# ------------------------------------------------------------------ in a real browser
def find_browser():
    """(chromium, chromedriver) paths, or the reason they cannot be used."""
    if importlib.util.find_spec("gradio") is None:
        return None, 'Gradio is not installed (pip install "pyro-vlae[explore]")'
    if importlib.util.find_spec("selenium") is None:
        return None, "Selenium is not installed (pip install selenium)"
    names = ("chromium", "chromium-browser", "google-chrome")
    browser = next((shutil.which(b) for b in names if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return None, "no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
    return (browser, driver), ""


@pytest.fixture(scope="module")
def browser():
    found, reason = find_browser()
    if found is None:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    profile = tempfile.mkdtemp(prefix="pyro-vlae-chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1400,1100"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(found[1]), options=options)
    except WebDriverException as err:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"Chromium did not start: {err.msg}")
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if find_browser()[0] is None:
        pytest.skip(find_browser()[1])
    from pyro_vlae.explore import serve

    out = tmp_path_factory.mktemp("explore") / "run"
    # 40 steps at a high learning rate: enough for images that respond to the controls;
    # z1 and z2 (2-D) get a pad each, z3 (3-D) sliders
    r = run("fit", *SMALL, "--model", "hvae", "--z-dims", "2,2,3", "--steps", "40",
            "--lr", "0.01", "--warmup-steps", "10", "--out", str(out))
    assert r.exit_code == 0, r.output
    lines = []
    said = logging.Handler()
    said.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("pyro_vlae.explore")
    logger.addHandler(said)
    logger.setLevel(logging.INFO)
    try:
        app, url = serve(out, port=0, block=False)
    finally:
        logger.removeHandler(said)
        logger.setLevel(logging.NOTSET)
    assert lines and url in lines[0] and url.startswith("http://127.0.0.1:")
    yield url
    app.close()


def picture(driver, elem_id, old=None, timeout=60):
    """The pixels of the image in #elem_id, waiting (up to ``timeout`` s) for one that
    differs from ``old`` when given."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while True:
        images = driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
        src = images[0].get_attribute("src") if images else None
        if src:
            with urllib.request.urlopen(src, timeout=10) as response:
                pixels = np.asarray(Image.open(BytesIO(response.read())).convert("RGB"))
            if old is None or not np.array_equal(pixels, old):
                return pixels
        if time.time() > deadline:
            return old
        time.sleep(0.3)


def slider_values(driver, layer, dims=2):
    """The first ``dims`` values of ``layer``: its sliders' boxes, or its pad's."""
    from selenium.webdriver.common.by import By

    css = [f"#slider-{layer}-{k} input[type=number], #value-{layer}-{k} input" for k in range(1, dims + 1)]
    boxes = [driver.find_element(By.CSS_SELECTOR, c) for c in css]
    return [float(box.get_attribute("value")) for box in boxes]


def settle(driver, seconds=2.0):
    """Let the page send pending events (a lock's state travels with the next click anyway)."""
    time.sleep(seconds)


def wait_for_status(driver, text, timeout=60):
    """Wait until the page's status line says ``text``: the event has been answered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: text in d.find_element(By.ID, "status").text)


def test_page_opens_with_the_image_and_the_samples(browser, served):
    """Both pictures are part of the page as served, not the later answer to a load event, so a
    page that opens shows them at once."""
    import json

    with urllib.request.urlopen(served + "config", timeout=30) as response:
        config = json.load(response)
    values = {c["props"].get("elem_id"): c["props"].get("value") for c in config["components"]}
    assert values["image"] and values["grid"], "the page opens with empty picture panels"
    browser.get(served)
    assert picture(browser, "image", timeout=15) is not None and picture(browser, "grid", timeout=15) is not None


def test_page_moves_slider_redraws_and_keeps_locked_layers(browser, served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(served)
    first = picture(driver, "image")
    assert first is not None, "the page showed no generated image"
    assert "pyro-vlae explore" in driver.title
    driver.save_screenshot(str(tmp_path / "explore.png"))

    # moving a slider changes the image
    slider = driver.find_element(By.CSS_SELECTOR, "#slider-z3-1 input[type=range]")
    slider.send_keys(Keys.END)
    moved = picture(driver, "image", old=first)
    assert not np.array_equal(moved, first), "moving z3[1] did not change the image"
    assert slider_values(driver, "z3")[0] == pytest.approx(3.0)

    # re-draw with z2 locked: z2 stays, the others change, and so does the image
    driver.find_element(By.CSS_SELECTOR, "#lock-z2 input").click()
    settle(driver)
    before = {layer: slider_values(driver, layer) for layer in ("z1", "z2", "z3")}
    image_before = picture(driver, "image")
    driver.find_element(By.ID, "redraw-all").click()
    wait_for_status(driver, "Re-drew z1, z3.")
    redrawn = picture(driver, "image", old=image_before)
    after = {layer: slider_values(driver, layer) for layer in ("z1", "z2", "z3")}
    assert after["z2"] == before["z2"], "a locked layer changed on re-draw"
    assert after["z1"] != before["z1"] and after["z3"] != before["z3"]
    assert not np.array_equal(redrawn, image_before)

    # a per-layer re-draw of a locked layer changes nothing
    driver.find_element(By.ID, "redraw-z2").click()
    wait_for_status(driver, "z2 is locked")
    assert slider_values(driver, "z2") == after["z2"]
    assert np.array_equal(picture(driver, "image"), redrawn)

    # everything locked: re-drawing leaves the sliders and the image as they are
    for layer in ("z1", "z3"):
        driver.find_element(By.CSS_SELECTOR, f"#lock-{layer} input").click()
    settle(driver)
    locked_image = picture(driver, "image")
    driver.find_element(By.ID, "redraw-all").click()
    wait_for_status(driver, "Every layer is locked")
    assert {layer: slider_values(driver, layer) for layer in ("z1", "z2", "z3")} == after
    assert np.array_equal(picture(driver, "image"), locked_image), "re-drawing only locked layers changed the image"


def test_page_starts_from_a_test_image_or_an_upload(browser, served, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(served)
    first = picture(driver, "image")
    pads = {layer: picture(driver, f"pad-{layer}") for layer in ("z1", "z2")}
    driver.find_element(By.ID, "encode-test").click()
    source = picture(driver, "source")
    assert source is not None, "the encoded test image was not shown"
    encoded = picture(driver, "image", old=first)
    assert not np.array_equal(encoded, first)
    wait_for_status(driver, "Encoded test image 0")
    assert any(v != 0 for layer in ("z1", "z2", "z3") for v in slider_values(driver, layer))
    for layer, before in pads.items():  # the pads' dots move to the encoded values
        assert not np.array_equal(picture(driver, f"pad-{layer}", old=before), before), f"the pad of {layer} stayed"
    driver.save_screenshot(str(tmp_path / "encoded.png"))

    # an upload of another size and colour mode is resized and converted, and the page says so
    path = tmp_path / "upload.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 40), dtype=np.uint8), mode="L").save(path)
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))
    time.sleep(2)
    before = picture(driver, "image")
    driver.find_element(By.ID, "encode-upload").click()
    wait_for_status(driver, "Encoded the uploaded image.")
    status = driver.find_element(By.ID, "status").text
    assert "Resized 1 image(s) to 32×32" in status and "40×50" in status, status
    assert "Converted 1 image(s) to RGB for this model (e.g. the upload: L)" in status, status
    assert not np.array_equal(picture(driver, "image", old=before), before)


def test_page_pad_sets_a_2d_layer_and_a_lock_keeps_it(browser, served, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(served)
    first = picture(driver, "image")
    pad_before = picture(driver, "pad-z1")
    assert pad_before is not None, "the 2-D layer z1 showed no pad"
    assert not driver.find_elements(By.CSS_SELECTOR, "#slider-z1-1"), "a 2-D layer got sliders, not a pad"

    # a click at (1.5, -1.5) of the ±3 square sets z1 there and redraws the pad and the image;
    # the picture lies centred in its element, at its own size unless the element is smaller
    pad = driver.find_element(By.CSS_SELECTOR, "#pad-z1 img")
    natural = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", pad)
    scale = min(pad.size["width"] / natural[0], pad.size["height"] / natural[1], 1)
    offset = round(natural[0] / 4 * scale)  # a quarter of the side right of and below the origin
    ActionChains(driver).move_to_element_with_offset(pad, offset, offset).click().perform()
    WebDriverWait(driver, 60).until(lambda d: slider_values(d, "z1") != [0.0, 0.0])
    clicked = slider_values(driver, "z1")
    assert clicked == pytest.approx([1.5, -1.5], abs=0.1), clicked
    pad_clicked = picture(driver, "pad-z1", old=pad_before)
    assert not np.array_equal(pad_clicked, pad_before), "the pad's dot did not move"
    moved = picture(driver, "image", old=first)
    assert not np.array_equal(moved, first), "clicking the pad did not change the image"
    driver.save_screenshot(str(tmp_path / "pad.png"))

    # z1 locked: re-drawing moves the other layers and the image, never z1 or its pad
    driver.find_element(By.CSS_SELECTOR, "#lock-z1 input").click()
    settle(driver)
    others = {layer: slider_values(driver, layer) for layer in ("z2", "z3")}
    driver.find_element(By.ID, "redraw-all").click()
    wait_for_status(driver, "Re-drew z2, z3.")
    redrawn = picture(driver, "image", old=moved)
    assert not np.array_equal(redrawn, moved)
    assert slider_values(driver, "z1") == clicked, "a locked layer changed on re-draw"
    assert np.array_equal(picture(driver, "pad-z1"), pad_clicked), "a locked layer's pad changed on re-draw"
    assert {layer: slider_values(driver, layer) for layer in ("z2", "z3")} != others
    driver.find_element(By.ID, "redraw-z1").click()
    wait_for_status(driver, "z1 is locked")
    assert slider_values(driver, "z1") == clicked

    # typing a value into the pad's box moves its dot
    box = driver.find_element(By.CSS_SELECTOR, "#value-z1-2 input")
    box.clear()
    box.send_keys("2.5")
    assert not np.array_equal(picture(driver, "pad-z1", old=pad_clicked), pad_clicked), "typing did not move the dot"
