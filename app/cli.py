"""The ``paramlab`` command line.

``paramlab`` with no command runs the default command, which is ``demo`` for
now. Each command is a function ``_cmd_<name>(args) -> int`` that
``_build_parser`` registers on a subparser, so a new command is one function
and one ``add_parser`` call.

:func:`main` returns an exit code and never raises for bad arguments:
argparse prints a usage line and the error on stderr and the code is 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from app import __version__

Command = Callable[[argparse.Namespace], int]


def _cmd_demo(args: argparse.Namespace) -> int:
    # Imported here so that `paramlab --version` and `paramlab --help` need no engine.
    from app import demo_chapter

    try:
        demo_chapter.run(sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `paramlab demo | head`: the reader left, which is fine
        # Point stdout at devnull so the interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paramlab",
        description="See and shape a neural network's parameters.",
        epilog="With no command, paramlab runs 'demo'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    demo = commands.add_parser(
        "demo",
        help="walk through the parameter-initialization chapter and print each step",
        description=(
            "Build the chapter's small MLPs with the built-in engine and print what each "
            "step shows: initialization, parameter access, deferred shapes, sharing, "
            "custom initializers and one training step."
        ),
    )
    demo.set_defaults(func=_cmd_demo)

    parser.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed by argparse
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 2
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
