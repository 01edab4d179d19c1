"""``ganforge report RUN_DIR [RUN_DIR ...] [--out FILE]``: one self-contained HTML page of the runs."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML page (curves, samples, metrics) of runs",
                       description="Config, loss and metric curves, sample figures over time and final metrics "
                                   "with their protocol, for one run or several side by side. Figures are "
                                   "embedded; the page needs no network.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by ganforge train")
    p.add_argument("--out", help="HTML file (default RUN_DIR/report.html for one run, ./report.html for several)")
    p.set_defaults(run=_run)


def _run(args) -> int:
    from ganforge.report import write_report

    path = write_report(args.run_dirs, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(args.run_dirs)} run(s))")
    return 0
