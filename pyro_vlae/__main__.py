"""``python -m pyro_vlae``: the ``pyro-vlae`` command line."""

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="pyro-vlae")
