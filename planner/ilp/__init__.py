"""Integer programs of the planner (pulp + CBC; docs/ilp.md):

    schedule.py        which strategy runs each denoising step (switching schedule)
    schedule_modes.py  the search's plans as schedule modes; the schedule as a plan string
    partition.py       pipeline stages by cost with memory caps and unequal GPUs
    placement.py       which parallel dimension is innermost (layout order)
    hetero.py          unequal GPUs: token splits by speed, per-stage GPUs, step allocation
    solver.py          time limits, best solution and gap

This module holds the glue for `cli.py plan`: the options, the --plan path and the
"ilp" block of the JSON output.
"""
from __future__ import annotations

from ..errors import UsageError


def add_plan_options(p) -> None:
    """The integer-program options of `cli.py plan`."""
    p.add_argument("--no-schedule", action="store_true",
                   help="do not propose switching schedules (one strategy for all steps)")
    p.add_argument("--placement", default=None, choices=("search", "xdit"),
                   help="layout order of the parallel dimensions: search (default when searching) or xdit "
                        "(xDiT's fixed tp-sp-pp-cfg-dp; default with --plan, what `run` executes without --order)")
    p.add_argument("--approx-window", metavar="FIRST-LAST",
                   help="steps where a schedule may run approximate strategies (default: the middle 60%%)")


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


def evaluate_given(plan, model, sc, cluster, profile, placement: str | None):
    """(Prediction, ilp dict) of a user's plan: xDiT's layout unless placement="search"."""
    from ..cost.predict import predict
    if placement == "search":
        from .placement import place
        pl = place(plan, model, sc, cluster, profile)
        pred = pl.prediction
        if pl.moved:
            pred.notes.append(pl.note())
        return pred, {"placement": pl.to_dict(), "placements": [pl.to_dict()], "schedule": None}
    return predict(plan, model, sc, cluster, profile), {"placement": None, "placements": [], "schedule": None}


def hetero_details(plan_str: str, model, sc, cluster, profile, order=None) -> dict | None:
    """Unequal splits of a plan on mixed GPUs, for the JSON: rows per rank of every token
    group, and a STADI-style step allocation for them. None on uniform clusters."""
    if cluster.uniform or not plan_str:
        return None
    from ..cost.engine import Engine
    from ..layout import layout_for
    from ..plan import parse_plan
    from .hetero import allocate_steps
    plan = parse_plan(plan_str).base()
    eng = Engine(model, sc, cluster, profile, plan, layout_for(plan, tuple(order or ())))
    out: dict = {"gpus": [g.id for g in cluster.gpus]}
    if eng.split is not None:
        out["token_split"] = eng.split.to_dict()
        grp = eng.split.groups[0]
        speeds = [cluster.gpus[r].peak(sc.dtype) / 1e12 for r in grp]
        out["stadi_step_allocation"] = allocate_steps(speeds, eng.split.rows_total, sc.steps)
    return out


def summary_lines(ilp: dict) -> list[str]:
    """Human-readable lines for `cli.py plan` (what the integer programs changed)."""
    lines = []
    pl = ilp.get("placement")
    if pl and pl.get("xdit_order"):
        from .placement import moved_order
        if moved_order(pl):
            lines.append(f"placement: {' < '.join(pl['order'])} (inner < outer) is {pl['gain']:.1%} faster "
                         f"than xDiT's order {' < '.join(pl['xdit_order'])} "
                         f"({pl['xdit_latency_s']:.4g} s -> {pl['latency_s']:.4g} s)")
        else:
            lines.append(f"placement: xDiT's order {' < '.join(pl['xdit_order'])} is already the best found"
                         + ("" if pl["order"] == pl["xdit_order"] else f" (tied with {' < '.join(pl['order'])})"))
    sch = ilp.get("schedule")
    if sch:
        sol = sch["solver"]
        gap = f"{sol['gap']:.1%}" if sol["gap"] is not None else "open"
        how = ("integer program optimal" if sol["status"] == "optimal" else
               f"optimal by the exact DP; CBC stopped at its time limit, gap {gap}"
               if sch["optimal"] else f"best found, gap {gap}")
        lines.append(f"switching schedule: {sch['plan']} ({sch['approx_steps']} approximate steps; {how})")
    het = ilp.get("hetero")
    if het and het.get("token_split"):
        rows = "; ".join(f"{'+'.join(g['gpus'])}: rows {g['rows']}" for g in het["token_split"]["groups"][:2])
        lines.append(f"unequal token split by GPU speed: {rows}")
    return lines
