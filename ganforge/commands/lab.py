"""``ganforge lab NAME``: a theory-lab experiment (a figure and its numbers); ``lab list`` names them."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.errors import ConfigError


def register(sub) -> None:
    lab = sub.add_parser("lab", help="theory lab: `ganforge lab list`, `ganforge lab NAME`",
                         description="Lecture results checked numerically: each experiment writes NAME.png and "
                                     "NAME.json into --out.")
    lab.add_argument("name", help="an experiment (`ganforge lab list` shows them), or `list`")
    lab.add_argument("--out", default="lab-out", help="folder for NAME.png and NAME.json (default lab-out)")
    lab.add_argument("--quick", action="store_true", help="a smaller, faster version of the experiment")
    lab.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    lab.set_defaults(run=run)


def run(args) -> int:
    if args.name == "list":
        from ganforge import catalogue

        labs = catalogue.load()["labs"]
        width = max((len(name) for name, _ in labs), default=0)
        for name, text in labs:
            print(f"  {name:<{width}}  {text}")
        return 0
    import ganforge.components  # noqa: F401
    from ganforge.registry import LABS

    experiment = LABS.get(args.name)  # an unknown name is an error before the folder is made
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the lab's output folder {out}: {e.strerror or e}") from None
    res = experiment(out=out, quick=args.quick, seed=args.seed)
    print(f"wrote {out / (args.name + '.png')} and {out / (args.name + '.json')}")
    headline = {k: v for k, v in (res or {}).items() if isinstance(v, (int, float, str))}
    if headline:
        print(json.dumps(headline))
    return 0
