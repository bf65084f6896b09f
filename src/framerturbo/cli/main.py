"""The ``framerturbo`` command line: thin wrappers over the Python API (``commands/``).

User errors (missing files, bad options or configs) end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_USAGE


def _quiet_libraries() -> None:
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    from . import data, evaluation, inference, sign, training

    parser = argparse.ArgumentParser(
        prog="framerturbo",
        description="Fine-tune, run and evaluate Framer frame interpolation.")
    parser.add_argument("--version", action="version", version=f"framerturbo {version('framerturbo')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (inference, training, data, evaluation, sign):  # each adds its subcommands
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        precheck = getattr(args, "precheck", None)
        if precheck is not None:  # inputs checked before the model libraries load (seconds)
            precheck(args)
        # where a command runs its networks: its --device, else what it declares (runs_on)
        device = getattr(args, "device", None) or getattr(args, "runs_on", None)
        if device:
            from .cpu_share import warn_if_cores_busy

            warn_if_cores_busy(device)
        _quiet_libraries()
        return args.func(args)
    except (ValueError, OSError, FloatingPointError) as e:  # ModelNotFoundError is an OSError
        message = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        print(f"framerturbo: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("framerturbo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
