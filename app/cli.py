"""The ``paramlab`` command line.

``paramlab [FILE] [--plugin-dir DIR]... [--screenshot OUT.png]`` opens the window (on FILE, or
on the chapter's example network). ``paramlab demo`` walks through the chapter headless and
``paramlab plugins ...`` lists or creates initializer plugins. Each command is a function
``_cmd_<name>(args) -> int`` that ``_build_parser`` registers on a subparser, so a new command
is one function and one ``add_parser`` call; the window's options live in ``_gui_parser``.

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


def _cmd_render(args: argparse.Namespace) -> int:
    """Render the before/after parameter heatmaps of FILE headless (see app/render.py)."""
    from app import render  # Qt is imported only when rendering
    return render.run(args)


def _cmd_gui(args: argparse.Namespace) -> int:
    # Qt is imported only here: `paramlab demo`, `plugins` and `--version` never load it.
    from app.ui.app import start
    return start(args)


COMMANDS = ("demo", "plugins", "render")
_GUI_OPTIONS_WITH_VALUE = ("--plugin-dir", "--screenshot")


def _commands_epilog() -> str:
    """The subcommands and their one-line help, for the window's ``--help``."""
    import textwrap
    lines = ["commands:"]
    for action in _build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                lines += textwrap.wrap(choice.help or "", 86,
                                       initial_indent=f"  {choice.dest:<10}",
                                       subsequent_indent=" " * 12)
    lines += ["", "'paramlab COMMAND --help' describes a command. PARAMLAB_SAFE_MODE=1 loads only "
              "the", "built-in initializers."]
    return "\n".join(lines)


def _gui_parser() -> argparse.ArgumentParser:
    """``paramlab [FILE] [--plugin-dir DIR]... [--screenshot OUT.png]``: the window."""
    parser = argparse.ArgumentParser(
        prog="paramlab",
        usage="paramlab [-h] [--version] [FILE] [--plugin-dir DIR] [--screenshot OUT.png]\n"
              "       paramlab COMMAND ...",
        description="See and shape a neural network's parameters. With no command, paramlab "
                    "opens the window on FILE\n(a .paramlab or .json model), by default on the "
                    "chapter's network resources/examples/chapter_mlp.json.",
        epilog=_commands_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("file", nargs="?", metavar="FILE",
                        help="a model to open (.paramlab or .json)")
    parser.add_argument("--plugin-dir", action="append", metavar="DIR", default=[],
                        help="also load plugins from DIR (repeatable)")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="open the window offscreen, save a PNG of it to OUT.png and exit")
    parser.set_defaults(func=_cmd_gui)
    return parser


def parse_gui_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the window's options; a FILE that does not exist is a usage error (exit 2)."""
    parser = _gui_parser()
    args = parser.parse_args(list(argv))
    if args.file is not None and not Path(args.file).exists():
        parser.error(f"cannot open {args.file!r}: no such file (and not a command: "
                     f"{', '.join(COMMANDS)})")
    return args


def _first_positional(argv: Sequence[str]) -> str | None:
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--":
            return None
        if token in _GUI_OPTIONS_WITH_VALUE:
            skip = True
            continue
        if token.startswith("-"):
            continue
        return token
    return None


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paramlab",
        description="See and shape a neural network's parameters.",
        epilog="With no command, paramlab opens the window (see 'paramlab --help').",
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

    render = commands.add_parser(
        "render", help="render a model's before/after parameter heatmaps to PNG or SVG",
        description="Open FILE, initialize it, run one forward pass and N × (backward + step), "
                    "then render the heatmaps of every parameter comparing the snapshot after "
                    "the forward (A) with the last one (B) to OUT (.png or .svg), headless.")
    render.add_argument("file", metavar="FILE", help="a model (.paramlab or .json)")
    render.add_argument("-o", "--output", required=True, metavar="OUT.png",
                        help="the picture to write (.png or .svg)")
    render.add_argument("--init", metavar="NAME[:key=value,...]",
                        help="the global initializer, e.g. 'xavier:magnitude=2'")
    render.add_argument("--steps", type=int, default=0, metavar="N",
                        help="gradient steps after the forward (default 0)")
    render.add_argument("--plugin-dir", action="append", metavar="DIR", default=[],
                        help="also load plugins from DIR (repeatable)")
    render.set_defaults(func=_cmd_render)

    parser.set_defaults(func=_cmd_gui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if _first_positional(argv) in COMMANDS:
            args = _build_parser().parse_args(argv)
        else:
            args = parse_gui_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed by argparse
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 2
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
