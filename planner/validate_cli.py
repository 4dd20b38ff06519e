"""`python cli.py validate`: predictions against published runs.

    python cli.py validate --data bench/data/calibration.csv [--json] [--report FILE.html]
    python cli.py validate --oom bench/data/oom.csv
"""
from __future__ import annotations

import json

from .errors import UsageError


def register(sub, common) -> None:
    p = sub.add_parser("validate", help="compare predictions with published latencies")
    p.add_argument("--data", help="CSV in the schema of bench/data/calibration.csv (published runs)")
    p.add_argument("--oom", help="CSV in the schema of bench/data/oom.csv (published out-of-memory cases)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--report", help="write an interactive HTML report")
    p.add_argument("--hw-profile", help="measured hardware profile instead of the datasheet one")
    p.add_argument("--uncalibrated", action="store_true", help="use the prior parameters, not the fitted ones")
    p.set_defaults(func=lambda args: run(args, common))


def _bound_hits(args) -> list[dict]:
    """The committed calibration's parameters at a bound (none for other profiles)."""
    from .calibrate import bound_hits
    from .hardware import CALIBRATED_FILE
    if args.uncalibrated or args.hw_profile or not CALIBRATED_FILE.exists():
        return []
    try:
        return bound_hits(json.loads(CALIBRATED_FILE.read_text()).get("parameters", {}))
    except (OSError, ValueError, AttributeError):
        return []


def run(args, common) -> int:
    from .hardware import Profile
    from .validate import evaluate, metrics, oom_metrics, read_rows, table

    if args.data is None and args.oom is None:
        raise UsageError("validate needs --data FILE and/or --oom FILE (e.g. --data bench/data/calibration.csv)")
    if args.uncalibrated and args.hw_profile is not None:
        raise UsageError(f"--uncalibrated and --hw-profile {args.hw_profile}: give one (the prior parameters, "
                         f"or a measured profile)")
    if args.report is not None:      # refused before the rows are evaluated, not after
        from .outfiles import check_out_path
        check_out_path(args.report, (".html", ".htm"), "report")
    profile = Profile() if args.uncalibrated else common.load_hw_profile(args.hw_profile)[1]
    rows = read_rows(args.data) if args.data is not None else []
    oom_rows = read_rows(args.oom, oom=True) if args.oom is not None else []
    out: dict = {"profile": profile.name}
    results = []
    if rows:
        results = evaluate(rows, profile)
        out |= metrics(results)
        out["at_bounds"] = _bound_hits(args)
    if oom_rows:
        out["oom"] = oom_metrics(evaluate(oom_rows, profile))
    if args.report:
        from .report.validate import write_validate_report
        write_validate_report(out, results, args.report)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    if rows:
        print(table(out))
        for b in out["at_bounds"]:
            print(f"parameter at its {b['bound']} bound: {b['parameter']} = {b['value']:.4g} "
                  f"(bound {b['bound_value']:.4g}): {b['means']}")
    if oom_rows:
        o = out["oom"]
        print(f"\nout-of-memory cases: {o['predicted_oom']} of {o['evaluated']} predicted not to fit")
        for d in o["rows_detail"]:
            print(f"  {d['id']:<24} {d['plan']:<24} {d['memory_gb']:>7.1f} GB  {'OOM' if not d['fits'] else 'fits'}")
        for s in o["skipped"]:
            print(f"  skipped {s['id']}: {s['reason']}")
    return 0
