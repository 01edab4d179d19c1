"""``ganforge list [KIND]``: the registered components, from the light catalogue (no torch import)."""

from __future__ import annotations

import difflib

from ganforge.catalogue import KINDS
from ganforge.errors import ConfigError


def register(sub) -> None:
    ls = sub.add_parser("list", help="list registered components (objectives, nets, games, ...)",
                        description="Names and one-line descriptions of every registered component; these "
                                    "names are what a recipe's `name:` keys take.")
    ls.add_argument("kind", nargs="?", metavar="KIND",
                    help=f"one kind (default: all): {', '.join(sorted(KINDS))}")
    ls.set_defaults(run=run)


def run(args) -> int:
    from ganforge import catalogue

    if args.kind is not None and args.kind not in KINDS:
        close = difflib.get_close_matches(args.kind, sorted(KINDS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown kind {args.kind!r}.{hint} Valid kinds: {', '.join(sorted(KINDS))}")
    cat = catalogue.load()
    for kind in [args.kind] if args.kind else sorted(KINDS):
        print(f"{kind}:")
        width = max((len(name) for name, _ in cat[kind]), default=0)
        for name, text in cat[kind]:
            print(f"  {name:<{width}}  {text}")
    return 0
