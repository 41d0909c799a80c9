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
from pathlib import Path
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


def _plugin_host(args: argparse.Namespace):
    from app.pluginhost import PluginHost
    return PluginHost(plugin_dirs=args.plugin_dir or ())


def _cmd_plugins(args: argparse.Namespace) -> int:
    """List every initializer with its origin and settings, then every failure."""
    import json

    host = _plugin_host(args)
    if args.json:
        doc = {"initializers": [info.to_json() for info in host.initializers.values()],
               "failures": [f.to_json() for f in host.failures]}
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print(f"Initializers ({len(host.initializers)}):")
    for info in host.initializers.values():
        settings = ", ".join(
            f"{s.name}: {s.type_name}{'' if s.required else ' = ' + repr(s.default)}"
            + (f" {{{'|'.join(map(str, s.choices))}}}" if s.choices else "")
            + (f" in {s.range.describe()}" if s.range is not None else "")
            for s in info.settings) or "no settings"
        data = "  [needs a data batch]" if info.needs_data else ""
        print(f"  {info.name:<16} {info.origin}{data}")
        if info.description:
            print(f"  {'':<16} {info.description}")
        print(f"  {'':<16} settings: {settings}")
    dirs = ", ".join(str(d) for d in host.plugin_dirs) or "none (safe mode)"
    print(f"\nPlugin folders searched: {dirs}")
    if host.failures:
        print(f"\nFailures ({len(host.failures)}):")
        for f in host.failures:
            print(f"  {f.plugin}\n    {f.kind}: {f.error}")
    else:
        print("\nNo plugin failed to load.")
    return 0


def _cmd_plugins_new(args: argparse.Namespace) -> int:
    """Write a commented starter plugin into the user's plugin folder (or --dir)."""
    from app.fileutil import write_text_atomic
    from app.pluginhost import user_plugin_dir
    from app.pluginhost.template import module_name_for, render

    try:
        text = render(args.name)
        directory = Path(args.dir) if args.dir else user_plugin_dir()
        path = directory / f"{module_name_for(args.name)}.py"
    except ValueError as err:
        print(f"paramlab plugins new: {err}; choose a name with letters, e.g. 'my init'.",
              file=sys.stderr)
        return 2
    if path.exists() and not args.force:
        print(f"paramlab plugins new: {path} already exists; choose another name or pass "
              "--force to overwrite it.", file=sys.stderr)
        return 1
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    except OSError as err:
        print(f"paramlab plugins new: cannot write {path}: {err}", file=sys.stderr)
        return 1
    print(f"Wrote {path}\nEdit it, then run `paramlab plugins` (or Plugins > Reload in the "
          "window) to load it.")
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

    plugins = commands.add_parser(
        "plugins",
        help="list initializer plugins, their settings and failures; 'plugins new NAME' "
             "writes a starter plugin",
        description="List every initializer (built-in and plugin) with its origin and "
                    "settings, then every plugin that failed to load and why.")
    plugins.add_argument("--plugin-dir", action="append", metavar="DIR", default=[],
                         help="also load plugins from DIR (repeatable)")
    plugins.add_argument("--json", action="store_true", help="print the same as JSON")
    plugins.set_defaults(func=_cmd_plugins)
    plugin_cmds = plugins.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")
    new = plugin_cmds.add_parser(
        "new", help="write a commented starter plugin into your plugin folder",
        description="Write NAME as a starter initializer plugin into the user plugin folder.")
    new.add_argument("name", metavar="NAME", help="the initializer's name, e.g. 'my init'")
    new.add_argument("--dir", metavar="DIR", help="write into DIR instead of the user folder")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.set_defaults(func=_cmd_plugins_new)

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
