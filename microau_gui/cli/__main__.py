"""`python -m microau_gui.cli COMMAND ...`: the command line without main.py. The torchrun workers of
`train/finetune --nproc N` run this (cli/launch.py). Owns nothing else."""

import sys

from microau_gui.cli import main

if __name__ == "__main__":
    sys.exit(main())
