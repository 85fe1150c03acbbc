"""Command line: `python main.py [PATH]` opens the GUI, `python main.py COMMAND ...` runs headless.

Owns: argument parsing and dispatch. Each subcommand lives in its own `cli/cmd_<name>.py` module
exposing `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`; they are discovered here so
adding a command never edits this file. May import every layer.

User mistakes raise `core.errors.UserError` (or a missing/unreadable file error) and become a
one-line `error: ...` on stderr with exit code 2; no traceback is printed for them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from microau_gui.core.errors import UserError

EXIT_USER_ERROR = 2


def _command_modules(only: str | None = None):
    """Every command module, or only the one named `only`: running a command imports no other,
    so a machine without the GUI or media stack (a bare CUDA box, `make gpu-check`) runs `bench`."""
    package = importlib.import_module(__name__)
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("cmd_"))
    if only is not None:
        names = [name for name in names if name == "cmd_" + only.replace("-", "_")]
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def _command_names() -> set[str]:
    package = importlib.import_module(__name__)
    return {m.name[4:].replace("_", "-") for m in pkgutil.iter_modules(package.__path__)
            if m.name.startswith("cmd_")}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="MicroAU Studio: micro-expression AU review, annotation and fine-tuning. "
        "Without a command it opens the GUI.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules(only):
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="Open the MicroAU Studio window. Commands: " + ", ".join(sorted(_command_names()))
        + " (see `python main.py COMMAND --help`).",
    )
    parser.add_argument("path", nargs="?", help="video, image folder or project (.maus); default: the bundled demo")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="open, wait until the first prediction is drawn, save the window, exit")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser


def main(argv: list[str] | None = None) -> int:
    from microau_gui.cli.native_log import filtered_native_stderr

    with filtered_native_stderr():
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    is_command = bool(argv) and argv[0] in _command_names()
    try:
        if not is_command:
            if argv and argv[0] in ("-h", "--help"):
                _gui_parser().print_help()
                build_parser().print_help()
                return 0
            args = _gui_parser().parse_args(argv)
            _configure_logging(args.verbose)
            from microau_gui.gui.app import run_gui  # Qt is loaded only for the GUI path

            return run_gui(args.path, screenshot=args.screenshot, device=args.device)
        args = build_parser(only=argv[0]).parse_args(argv)
        args._argv = argv  # `--nproc` starts the same command line again in torchrun workers (cli.launch)
        _configure_logging(args.verbose)
        return int(args._run(args) or 0)
    except UserError as err:
        if os.environ.get("RANK", "0") == "0":  # torchrun workers: rank 0 says it once for all
            print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as err:
        name = getattr(err, "filename", None) or ""
        print(f"error: {err.strerror or err}: {name}".rstrip(": "), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
