"""The library says what it does through module loggers; the command line writes those
messages as they are, once, and leaves the logging configuration as it found it."""

import logging
import subprocess
import sys

from conftest import fit_args, run

from pyro_vlae.config import RunConfig
from pyro_vlae.run import fit


def tiny_config(**kw):
    return RunConfig(plugin_options={"num_train": 64, "num_test": 16}, z_dims=(2, 2), width=0.125, steps=4,
                     batch_size=16, log_every=2, **kw)


def test_an_api_user_gets_the_warnings_through_logging(tmp_path, caplog):
    """With no logging configured the library's information stays quiet and its warnings
    (here: a fade-in longer than the run) reach the root logger's handlers."""
    fit(tiny_config(model="vlae", fade_in=10), tmp_path / "run", progress=False)
    said = [(r.name, r.levelno) for r in caplog.records if r.name.startswith("pyro_vlae")]
    assert said == [("pyro_vlae.run", logging.WARNING)]
    assert caplog.records[-1].getMessage().startswith("warning: the fade-in (one layer every 10 steps)")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pyro_vlae"):
        fit(tiny_config(), tmp_path / "again", progress=False)
    assert caplog.messages[0].startswith("pyro-vlae ") and caplog.messages[-1].startswith("wrote ")
    assert "trained 4 steps in" in caplog.messages[1]


def test_without_any_logging_configuration_a_warning_reaches_stderr():
    """Python's last-resort handler prints the library's warnings for a script."""
    script = ("from PIL import Image\nfrom pyro_vlae.encode import images_to_tensor\n"
              "images_to_tensor([Image.new('RGB', (8, 8))], (3, 4, 4))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == "resized 1 image(s) to 4×4, the model's input size (e.g. image 0: 8×8)\n"


def test_the_command_line_writes_each_message_once_as_it_is(tmp_path):
    """No level or logger name, not repeated by a handler of the root logger, and the
    library's logger is left as it was."""
    heard = []
    root = logging.Handler()
    root.emit = lambda record: heard.append(record.getMessage())
    logging.getLogger().addHandler(root)
    try:
        r = run("fit", *fit_args(), "--model", "vlae", "--fade-in", "10", "--out", tmp_path / "run")
    finally:
        logging.getLogger().removeHandler(root)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("pyro-vlae ") and lines[1].startswith("warning: the fade-in (one layer every 10")
    assert sum(line.startswith("trained 4 steps in ") for line in lines) == 1 and lines[-1].startswith("wrote ")
    assert not [m for m in heard if m.startswith(("pyro-vlae ", "warning: the fade-in", "trained ", "wrote "))]
    library = logging.getLogger("pyro_vlae")
    assert library.handlers == [] and library.propagate and library.level == logging.NOTSET
