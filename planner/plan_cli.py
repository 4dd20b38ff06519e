"""`python cli.py plan`: rank the plans for a model on a cluster, or evaluate one plan.

    search / evaluate  ->  SearchResult  ->  text (textout.py) | JSON document (here) | report, trace

The search returns typed objects; this module is the edge where they become the JSON
document of `plan --json`, which the HTML report (report/plan.py) renders, so
`cli.py report plan saved.json` rebuilds the page `plan --report` writes.
"""
from __future__ import annotations

import json

from . import engines
from .engines import ENGINES
from .errors import UsageError
from .limits import option
from .search import DEFAULT_APPROX_STEPS


def register(sub, common) -> None:
    p = sub.add_parser("plan", help="rank parallel plans for a model on a cluster")
    common.add_scenario_args(p)
    p.add_argument("--model-dir", metavar="DIR", help="plan a local diffusers model folder instead of --model "
                   "(reads model_index.json and the components' config.json, never weights)")
    p.add_argument("--plan", help="evaluate this plan string instead of searching (e.g. 'cfg=2 pipefusion=4')")
    p.add_argument("--exact-only", action="store_true", help="only plans whose output equals one GPU's")
    p.add_argument("--approx-steps", type=option("--approx-steps"), default=DEFAULT_APPROX_STEPS,
                   help="quality knob: most steps the recommended plan may run with an approximate strategy "
                        f"(AsyncDiff, ParaStep, Hybridiff's window), 0..1000; default {DEFAULT_APPROX_STEPS}")
    p.add_argument("--top", type=option("--top"), default=10, help="plans to show (default 10)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout (the same bytes for the same "
                   "input: wall-clock timings only with --timings)")
    p.add_argument("--timings", action="store_true", help="keep the search's wall-clock seconds in the JSON")
    p.add_argument("--engine", help="search only the plans this engine runs and print its launch: "
                   + " | ".join(ENGINES))
    p.add_argument("--xdit", action="store_true", help="print the xDiT flags of the recommended plan")
    p.add_argument("--hw-profile", help="measured hardware profile (written by `cli.py profile`)")
    p.add_argument("--no-schedule", action="store_true",
                   help="do not propose switching schedules (one strategy for all steps)")
    p.add_argument("--placement", default=None, choices=("search", "xdit"),
                   help="layout order of the parallel dimensions: search (default when searching) or xdit "
                        "(xDiT's fixed tp-sp-pp-cfg-dp; default with --plan, what `run` executes without --order)")
    p.add_argument("--approx-window", metavar="FIRST-LAST",
                   help="steps where a schedule may run approximate strategies (default: the middle 60%%)")
    p.add_argument("--report", metavar="FILE.html", help="write an interactive HTML report (opens offline)")
    p.add_argument("--trace", metavar="FILE.json",
                   help="write the recommended plan's simulated timeline as a Chrome trace (Perfetto)")
    p.set_defaults(func=lambda args: cmd_plan(args, common))


def search_options(args, steps: int) -> dict:
    """search() keyword arguments from the options (UsageError on bad input)."""
    window = None
    if getattr(args, "approx_window", None):
        a, dash, b = args.approx_window.partition("-")
        ok = dash and all(x.strip().isascii() and x.strip().isdigit() and len(x.strip()) < 10 for x in (a, b))
        if not ok or not 1 <= int(a) <= int(b) <= steps:
            raise UsageError(f"--approx-window {args.approx_window}: give FIRST-LAST with 1 <= FIRST <= LAST "
                             f"<= {steps} (the steps)")
        window = (int(a), int(b))
    return {"schedules": not getattr(args, "no_schedule", False),
            "placement": getattr(args, "placement", None) or "search", "approx_window": window}


def cmd_plan(args, common) -> int:
    from . import textout
    from .legality import plan_errors
    from .plan import parse_plan
    from .report.html import check_out_path
    from .search import evaluate, search

    # refused before the search, not after it ('' too: it names no file)
    report = check_out_path(args.report, (".html", ".htm"), "report") if args.report is not None else None
    trace = check_out_path(args.trace, (".json",), "trace") if args.trace is not None else None
    engine = engines.get_engine(args.engine) if args.engine else None
    profile_doc, profile = common.load_hw_profile(args.hw_profile)
    model, sc, cluster = common.build_inputs(args, profile_doc)
    if engine:
        engines.require_model(engine, model)
    outputs = bool(args.json or report or trace)
    if args.plan is not None:
        plan = parse_plan(args.plan)
        errs = plan_errors(plan, model, sc, cluster.n)
        if errs:
            raise UsageError(f"plan '{args.plan}': {errs[0]}")
        if engine:
            engines.require_plan(engine, plan, model, sc, cluster)
        res = evaluate(plan, model, sc, cluster, profile, args.placement or "xdit", detail=bool(outputs))
    else:
        res = search(model, sc, cluster, profile, exact_only=args.exact_only, approx_budget=args.approx_steps,
                     detail=bool(outputs), accept=engines.accepts(engine, model, sc, cluster) if engine else None,
                     **search_options(args, sc.steps))
        if engine and not res.ranked:
            engines.no_plan(engine, model, cluster)
    doc = document(res, model, sc, cluster, profile, top=None if args.json else args.top, detail=bool(outputs))
    from .engines.output import engine_section
    key, doc[key], engine_text = engine_section(engine, res, model, sc, cluster, args.approx_steps)
    xdit_text = []
    if args.xdit and res.recommended:     # xDiT's flags for the recommendation, whichever engine it was searched for
        from .engines.xdit import xdit_section
        rec = res.recommended
        doc["xdit"], xdit_text = xdit_section(rec.plan, model, sc, cluster, res.placed_order(rec.plan))
    written = write_outputs(report, trace, doc, res)
    if args.json:
        print(json.dumps(doc if args.timings else common.without_timings(doc), indent=1))
        return 0
    print(textout.scenario_line(model, sc, cluster))
    if cluster.uniform:
        one = "one GPU"
    else:               # the speed-up reference of a mixed cluster (planner.cost.predict.serial_gpu)
        from .cost.predict import serial_gpu
        from .hardware import load_gpu
        one = f"one GPU (the fastest here, {load_gpu(serial_gpu(model, sc, cluster, profile)).name})"
    print(f"  {one}: {textout.fmt_s(res.serial_latency_s)}"
          f"   (profile: {profile.name}; {len(res.ranked)} plans in {res.seconds:.2f} s)")
    measured = next((p.block_times for p in res.ranked if p.block_times), "")   # profile --model
    print(f"  {measured}\n" if measured else "")
    rec = res.recommended
    if args.plan is not None:
        print(textout.detail(rec))
    else:
        print(textout.table(res.ranked, args.top, rec))
        if rec is None:
            print("\n" + textout.no_recommendation(res.ranked, args.approx_steps, args.exact_only))
        else:
            print(f"\nrecommended: {rec.plan}  ->  {textout.fmt_s(rec.latency_s)}, {rec.speedup:.2f}x over one GPU, "
                  f"{rec.memory_bytes / 2**30:.1f} GB per GPU, {textout.fidelity_words(rec)}")
            for line in textout.why(rec, res.ranked):
                print(f"  - {line}")
    for line in textout.ilp_lines(res):
        print(f"  {line}")
    for line in engine_text + xdit_text:
        print(line)
    for line in written:
        print(line)
    return 0


# ---------------------------------------------------------------- the JSON document
def document(res, model, sc, cluster, profile, top: int | None = None, detail: bool = False) -> dict:
    """The `plan --json` document of a SearchResult (the first `top` plans; all if None).
    detail: also "timeline" (search(detail=True)), "layout" and "cluster_graph", what the
    HTML report draws."""
    rec = res.recommended
    doc = {"scenario": sc.to_dict() | {"model_name": model.facts.name},
           "cluster": cluster.to_dict(), "profile": profile.name,
           "recommended": rec.to_dict() if rec else None,
           "plans": [p.to_dict() for p in res.ranked[:top]],
           "seconds": round(res.seconds, 3),
           "ilp": ilp_dict(res)}
    shown = res.shown
    if detail:
        from .layout import layout_for
        if res.timeline is not None:
            doc["timeline"] = res.timeline.to_dict() | {"plan": str(shown.plan), "recommended": shown is rec}
        if shown is not None:
            doc["layout"] = layout_for(shown.plan.base(), res.order_of(shown.plan)).to_dict(shown.plan)
        doc["cluster_graph"] = cluster.graph_dict()
    return doc


def ilp_dict(res) -> dict:
    """What the integer programs chose ("ilp" of the document)."""
    rec = res.recommended
    mine = res.placement_of(rec.plan) if rec else None
    return {"placement": mine.to_dict() if mine else None,
            "placements": [p.to_dict() for p in res.placements],
            "schedule": res.schedule.to_dict() if res.schedule else None,
            "seconds": round(res.ilp_seconds, 3),
            "hetero": res.hetero.to_dict() if res.hetero else None}


def write_outputs(report, trace, doc: dict, res) -> list[str]:
    """--report and --trace (their paths were checked before the search); lines to print."""
    written = []
    if report:
        from .report.plan import write_plan_report
        # every plan in the report, not only the --top shown as text
        write_plan_report(doc | {"plans": [p.to_dict() for p in res.ranked]}, report)
        written.append(f"report: {report}")
    if trace:
        if res.timeline is None:
            raise UsageError(f"--trace {trace}: no plan was evaluated, so there is no timeline to trace")
        from .report.html import write_json_atomic
        write_json_atomic(trace, res.timeline.to_chrome_trace())
        written.append(f"trace: {trace} (open in https://ui.perfetto.dev or chrome://tracing)")
    return written
