"""`ganforge` command line: parse, hand over to a command of ganforge/commands/. User errors exit 2, no traceback.

Parsing, help, the overview, `list` and argument errors import nothing heavy
(no torch, matplotlib or scipy): each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings

from ganforge.errors import CheckpointError, ConfigError


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one sentence after the usage line, pointing at --help; exit 2."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"ganforge: error: {message}. See `{self.prog} --help`.\n")


class _Overview(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(overview(parser))
        parser.exit()


def _parser() -> Parser:
    from ganforge import __version__

    p = Parser(prog="ganforge", add_help=False, description="Train, evaluate and understand GANs.")
    p.add_argument("-h", "--help", action=_Overview, help="show the commands and examples, and exit")
    p.add_argument("--version", action="version", version=f"ganforge {__version__}", help="print the version")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    _register_commands(sub)
    return p


def _register_commands(sub) -> None:
    """Subcommands living in ganforge/commands/ (one module each, ``register(sub)``), in ``ORDER``."""
    import importlib
    import pkgutil

    import ganforge.commands as pkg

    found = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    for mod in [m for m in pkg.ORDER if m in found] + sorted(found - set(pkg.ORDER)):
        importlib.import_module(f"ganforge.commands.{mod}").register(sub)


def _commands(p: argparse.ArgumentParser) -> dict[str, str]:
    """{command: its one-line help}, in the order of ``ganforge --help``."""
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help or "" for a in sub._choices_actions}


def overview(p: argparse.ArgumentParser) -> str:
    from ganforge.commands import invoked_as

    g = invoked_as()
    cmds = _commands(p)
    width = max(map(len, cmds)) + 2
    lines = ["ganforge: train, evaluate and understand generative adversarial networks.", "",
             f"usage: {g} COMMAND [ARGS]      ({g} COMMAND --help explains one)", "", "commands:"]
    lines += [f"  {name:<{width}}{text}" for name, text in cmds.items()]
    lines += ["", "start here:",
              f"  {g} train configs/toy/ring.yaml                   # a GAN on 8 Gaussians; ends with a summary",
              f"  {g} train configs/toy/ring.yaml --train.steps=500 --objective.name=hinge   # override any key",
              f"  {g} list objectives                               # what a recipe's names can be",
              f"  {g} report runs/RUN_DIR                           # curves, samples and metrics in one page",
              "", f"options: -h/--help (or `{g} help`) this overview, --version the version"]
    return "\n".join(lines)


def _check_command(p: argparse.ArgumentParser, argv: list[str]) -> None:
    """An unknown command is an error naming the valid ones (before argparse's longer message)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or argv[0].startswith("-"):
        return
    cmds = list(_commands(p))
    if first not in cmds:
        close = difflib.get_close_matches(first, cmds, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown command {first!r}.{hint} Valid commands: {', '.join(cmds)}")


def _stopped_message(e: BaseException) -> str | None:
    """The message of the trainer's TrainingStopped (the trainer module is only imported by a training)."""
    trainer = sys.modules.get("ganforge.training.trainer")
    if trainer is None or not isinstance(e, trainer.TrainingStopped):
        return None
    from ganforge.commands import invoked_as

    return str(e).replace("ganforge train --resume", f"{invoked_as()} train --resume")


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings reach a CLI user as one line, ``ganforge: warning: ...`` (no category, no source line)."""
    if issubclass(category, UserWarning):
        return f"ganforge: warning: {message}\n"
    return _FORMAT_WARNING(message, category, filename, lineno, line)


_FORMAT_WARNING = warnings.formatwarning


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    shown, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = shown


def _main(argv: list[str]) -> int:
    p = _parser()
    try:
        if argv[:1] == ["help"]:  # `ganforge help [COMMAND]`, as git and pip have it
            argv = [argv[1], "--help"] if len(argv) > 1 else []
        if not argv:
            print(overview(p))
            return 0
        _check_command(p, argv)
        args, extra = p.parse_known_args(argv)
        if getattr(args, "takes_overrides", False):
            return args.run(args, extra)
        if extra:
            raise ConfigError(f"unexpected argument(s){f' for `{args.cmd}`' if args.cmd else ''}: {' '.join(extra)}")
        if args.cmd is None:
            raise ConfigError(f"no command given. Valid commands: {', '.join(_commands(p))}")
        return args.run(args)
    except (ConfigError, CheckpointError) as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        msg = _stopped_message(e)
        if msg is None:
            raise
        print(f"ganforge: {msg}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
