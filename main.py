"""Entry point: `python main.py` (GUI on the bundled demo) or `python main.py COMMAND ...`."""

import sys

from microau_gui.cli import main

if __name__ == "__main__":
    sys.exit(main())
