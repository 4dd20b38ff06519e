"""What `plan` prints and writes about engines.

With --engine E: the recommendation's launch for E (command, config, script, notes, and
the GPU order that gives E the placed layout), as text lines and as JSON "engine".
Without: which engines can run the recommendation, and the best plan each engine can
run, read off the same ranked predictions (no second search), as JSON "engines".
"""
from __future__ import annotations

from ..search import eligible
from ..textout import fmt_s
from . import ENGINES, Engine, why_no_plan
from .devices import device_lines, placed_devices


def launch_doc(engine: Engine, plan, model, sc, cluster, placed: tuple[str, ...] | None) -> dict:
    """JSON "engine": the engine and how to launch `plan` on it (placed: the placement's
    order when it beats xDiT's, SearchResult.placed_order)."""
    launch = engine.launch(plan, model, sc, cluster)
    doc = {"name": engine.name, "title": engine.title, "version": engine.version, "plan": str(plan),
           **launch.to_dict(), "launch": launch.command}
    doc.pop("command")
    if engine.order is None:
        if placed and not plan.segments:
            doc["launch"] += f" --order {','.join(placed)}"
    else:
        doc |= placed_devices(plan, placed, cluster, engine.order)
    return doc


def launch_lines(doc: dict) -> list[str]:
    lines = [f"\n{doc['title']} launch for {doc['plan']} (rules read at {doc['version']}):", f"  {doc['launch']}"]
    if doc.get("script"):
        name = doc["launch"].split()[-1] if doc["launch"].split()[-1].endswith(".py") else "script"
        lines.append(f"  {name}:")
        lines += [f"    {line}" if line else "" for line in doc["script"].rstrip("\n").split("\n")]
    lines += [f"  note: {n}" for n in doc.get("notes", [])]
    lines += [f"  {line}" for line in device_lines(doc["title"], doc)]
    return lines


def best_per_engine(res, model, sc, cluster, approx_budget: int) -> list[dict]:
    """For every engine, the fastest recommendable plan it can run (or why none), from
    the one search's predictions (a SearchResult). "placed": the search also chose its
    rank order (or it has one dimension); otherwise it is predicted in xDiT's order, and
    `--engine` (which places its own top plans) may find it, or another plan, faster."""
    placed = {p.plan for p in res.placements}
    rows = []
    for e in ENGINES.values():
        best = next((p for p in res.ranked if eligible(p, approx_budget)
                     and e.can_run(p.plan, model, sc, cluster.nodes)), None)
        row = {"engine": e.name, "title": e.title}
        if best is not None:
            row |= {"plan": str(best.plan), "latency_s": best.latency_s, "speedup": best.speedup,
                    "placed": best.plan in placed or len(best.plan.base().degrees) < 2}
        else:
            row |= {"plan": None, "why": _why_none(e, res.ranked, model, sc, cluster)}
        rows.append(row)
    return rows


def _why_none(e: Engine, preds, model, sc, cluster) -> str:
    if e.model_support(model.id) is None:
        return f"no multi-GPU support for {model.id}"
    runnable = [p for p in preds if e.can_run(p.plan, model, sc, cluster.nodes)]
    if runnable:
        return f"its {len(runnable)} runnable plan(s) do not fit or exceed the quality budget"
    return f"no plan for {cluster.n} GPUs: {why_no_plan(e, model, cluster).split(' [')[0]}"


def engines_doc(res, model, sc, cluster, approx_budget: int) -> dict:
    """JSON "engines": who runs the recommendation, and each engine's best plan."""
    rec = res.recommended
    runs = [e.name for e in ENGINES.values() if rec is not None and e.can_run(rec.plan, model, sc, cluster.nodes)]
    return {"runs_recommended": runs, "best": best_per_engine(res, model, sc, cluster, approx_budget)}


def engines_lines(doc: dict, rec) -> list[str]:
    titles = {r["engine"]: r["title"] for r in doc["best"]}
    who = ", ".join(titles[n] for n in doc["runs_recommended"]) or "no engine"
    lines = [f"\nengines: {rec.plan if rec else 'the recommendation'} runs on {who}; "
             f"the best plan each engine can run (--engine NAME prints its launch):"]
    for r in doc["best"]:
        if r["plan"] is None:
            lines.append(f"  {r['engine']:<10} -  ({r['why']})")
        else:
            lines.append(f"  {r['engine']:<10} {r['plan']:<34} {fmt_s(r['latency_s']):>9} {r['speedup']:>7.2f}x"
                         + ("" if r["placed"] else "  ~"))
    if any(r["plan"] and not r["placed"] for r in doc["best"]):
        lines.append("  ~ predicted in xDiT's rank order; --engine NAME also searches the placement of its plans")
    return lines


def engine_section(engine: Engine | None, res, model, sc, cluster, approx_budget: int):
    """(JSON key, JSON value, text lines) for the plan command: "engine" with --engine,
    else "engines" (res: the SearchResult)."""
    rec = res.recommended
    if engine is not None:
        if rec is None:
            return "engine", {"name": engine.name, "title": engine.title, "launch": None}, []
        doc = launch_doc(engine, rec.plan, model, sc, cluster, res.placed_order(rec.plan))
        return "engine", doc, launch_lines(doc)
    doc = engines_doc(res, model, sc, cluster, approx_budget)
    return "engines", doc, engines_lines(doc, rec)
