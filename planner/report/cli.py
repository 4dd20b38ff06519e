"""`python cli.py report KIND INPUT.json --out FILE.html`: a report from saved JSON.

    python cli.py plan --json > plan.json && python cli.py report plan plan.json --out plan.html
    python cli.py report run run.json --out run.html            (run --json: one result or a sweep)
    python cli.py report validate validate.json --out val.html  (validate --json)
    python cli.py report profile hw_profiles/local.json --out profile.html

Bad input (unknown kind, unreadable or malformed JSON, a document of another kind, an
output that cannot be written): one line on stderr, exit code 2 (UsageError).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

KINDS = ("plan", "run", "validate", "profile")


def register(subparsers, common) -> None:
    p = subparsers.add_parser("report", help="render an interactive HTML report from a saved JSON",
                              description="Render the HTML report of `plan --json`, `run --json`, "
                                          "`validate --json` output or of a hardware profile file.")
    p.add_argument("kind", help="plan | run | validate | profile")
    p.add_argument("input", help="the JSON document (command output saved to a file, or a profile)")
    p.add_argument("--out", metavar="FILE.html", help="report to write (default: INPUT with .html)")
    p.set_defaults(func=cmd_report)


def render(kind: str, doc, out) -> None:
    """Dispatch to the report of `kind`; imports stay lazy so `cli.py plan` pays nothing."""
    if kind == "plan":
        from .plan import write_plan_report
        write_plan_report(doc, out)
    elif kind == "run":
        from .run import write_run_report
        write_run_report(doc, out)
    elif kind == "validate":
        from .validate import report_from_json
        report_from_json(doc, out)
    else:
        from ..profile_io import check_profile
        from .profile import write_profile_report
        check_profile(doc)         # the same checks as `plan --hw-profile` (HardwareError, one line)
        write_profile_report(doc, out)


def cmd_report(args) -> int:
    from ..errors import read_json
    from .html import check_out_path
    from ..limits import show
    if args.kind not in KINDS:
        raise UsageError(f"report kind {show(args.kind)}: accepted: {', '.join(KINDS)}")
    if not args.input.strip():
        raise UsageError(f"input {show(args.input)}: give the JSON document to render")
    src = Path(args.input)
    out = Path(args.out) if args.out is not None else src.with_suffix(".html")
    check_out_path(args.out if args.out is not None else out, (".html", ".htm"), "report")
    if out.resolve() == src.resolve():
        raise UsageError(f"--out {out}: would overwrite the input")
    doc = read_json(src, str(src))
    from ..errors import user_errors
    try:
        render(args.kind, doc, out)
    except user_errors() as e:     # name the input, unless the message is about the output
        raise UsageError(str(e) if str(e).startswith(str(out)) else f"{src}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        # a document that passed the shape checks but is wrong deeper down: still one line
        raise UsageError(f"{src}: not a valid {args.kind} document ({type(e).__name__}: {e})") from None
    print(f"wrote {out}")
    return 0
