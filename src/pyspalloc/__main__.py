"""``python -m pyspalloc``: the ``pyspalloc`` command line."""

from pyspalloc.cli.main import main

if __name__ == "__main__":
    main()
