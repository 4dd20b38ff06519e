"""Human-readable output of `cli.py plan`: the ranked table and why the winner wins."""
from __future__ import annotations

from .spec import Prediction

GB = 2**30


def fmt_s(s: float) -> str:
    if s >= 10:
        return f"{s:.1f} s"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 0.01:
        return f"{s * 1e3:.0f} ms"
    return f"{s * 1e3:.1f} ms" if s >= 5e-5 else "0"


def scenario_line(model, sc, cluster) -> str:
    size = f"{sc.height}x{sc.width}" + (f", {sc.frames} frames" if sc.frames > 1 else "")
    cfg = "CFG (2 branches)" if sc.cfg else "no CFG"
    extra = f", batch {sc.batch}" if sc.batch > 1 else ""
    scope = "denoising loop only" if sc.scope == "denoise" else "text encoders + denoising + VAE"
    return (f"{model.facts.name} at {size}, {sc.steps} steps, {cfg}{extra}, {sc.dtype}"
            f"{', compiled' if sc.compiled else ''} ({scope})\n  on {cluster.describe()}")


def fidelity(p: Prediction) -> str:
    """exact; near (stale activations / tolerance); approx(N steps)."""
    if p.exact:
        return "exact"
    return f"~{p.approx_steps} steps" if p.approx_steps else "near"


def fidelity_words(p: Prediction) -> str:
    if p.exact:
        return "exact (same output as one GPU)"
    if p.approx_steps:
        return f"approximate ({p.approx_steps} steps reuse earlier predictions)"
    return "near-exact (stale activations, refreshed every step)"


def table(preds: list[Prediction], top: int, recommended: Prediction | None = None) -> str:
    head = (f"{'#':>3}  {'plan':<34} {'latency':>9} {'speed-up':>8} {'GB/GPU':>7} {'fits':>4} {'output':>9}"
            f"   {'compute':>8} {'comm':>8} {'bubble':>8} {'text':>7} {'vae':>7}")
    rows = [head, "-" * len(head)]
    for i, p in enumerate(preds[:top], 1):
        b = p.breakdown
        mark = "*" if recommended is not None and p.plan == recommended.plan else " "
        rows.append(f"{i:>3}{mark} {str(p.plan):<34} {fmt_s(p.latency_s):>9} {p.speedup:>7.2f}x "
                    f"{p.memory_bytes / GB:>7.1f} {'yes' if p.fits else 'OOM':>4} {fidelity(p):>9}"
                    f"   {fmt_s(b.compute):>8} {fmt_s(b.comm):>8} {fmt_s(b.bubble + b.warmup):>8} "
                    f"{fmt_s(b.text_encoders):>7} {fmt_s(b.vae):>7}")
    if len(preds) > top:
        rows.append(f"     ... {len(preds) - top} more (--top N)")
    rows.append("output: exact = same as one GPU; near = stale activations refreshed every step; "
                "~N steps = N steps reuse earlier predictions")
    return "\n".join(rows)


def why(rec: Prediction, preds: list[Prediction]) -> list[str]:
    """A few sentences, all read off the predictions, on why the recommendation wins."""
    out = []
    b = rec.breakdown
    den = b.compute + b.comm + b.bubble + b.warmup + b.other
    if den > 0:
        out.append(f"{rec.plan}: {100 * b.compute / den:.0f}% of its denoising time is compute, "
                   f"{100 * b.comm / den:.0f}% exposed communication, {100 * (b.bubble + b.warmup) / den:.0f}% "
                   f"warm-up and pipeline bubbles.")
    seen = {rec.plan}
    for p in preds:
        if len(out) >= 4:
            break
        family = p.plan.keys[:1]
        if p.plan in seen or any(s.keys[:1] == family for s in seen):
            continue
        seen.add(p.plan)
        pb = p.breakdown
        loss = {"exposed communication": pb.comm - b.comm,
                "warm-up and bubbles": pb.bubble + pb.warmup - b.bubble - b.warmup,
                "compute": pb.compute - b.compute}
        worst = max(loss, key=loss.get)
        if not p.fits:
            out.append(f"{p.plan} does not fit: {p.memory_bytes / GB:.1f} GB per GPU > {p.capacity_bytes / GB:.0f} GB.")
        elif p.latency_s > rec.latency_s:
            out.append(f"{p.plan} is {p.latency_s / rec.latency_s:.2f}x slower, mostly "
                       f"{worst} (+{fmt_s(max(loss[worst], 0))}).")
    if rec.speedup < 1:
        out.append("No plan on these GPUs beats one GPU: fewer GPUs (or a faster interconnect) would do better.")
    if not rec.exact:
        why_not = "stale activations" if not rec.approx_steps else f"{rec.approx_steps} approximate steps"
        exact = next((p for p in preds if p.exact and p.fits), None)
        if exact:
            out.append(f"{rec.plan} is not exact ({why_not}); the fastest exact plan is "
                       f"{exact.plan} at {fmt_s(exact.latency_s)} ({exact.speedup:.2f}x).")
        elif any(p.exact for p in preds):
            out.append(f"{rec.plan} is not exact ({why_not}); no exact plan fits in memory on these GPUs.")
        else:
            out.append(f"{rec.plan} is not exact ({why_not}); no exact plan is possible on this GPU count "
                       f"(the model's heads, rows and CFG branches do not split over it).")
    return out


def no_recommendation(preds: list[Prediction], approx_budget: int, exact_only: bool = False) -> str:
    """Why nothing is recommended: which limit binds, memory or the quality budget."""
    only = " (exact plans only)" if exact_only else ""
    if not preds:
        exact = "exact " if exact_only else ""
        return f"no {exact}plan is possible on these GPUs: no {exact}strategy splits this model over them"
    fits = [p for p in preds if p.fits]
    if not fits:
        small = min(preds, key=lambda p: p.memory_bytes)
        return (f"no plan fits in memory on these GPUs{only}: the smallest, {small.plan}, needs "
                f"{small.memory_bytes / GB:.1f} GB per GPU of {small.capacity_bytes / GB:.0f} GB")
    fewest = min(fits, key=lambda p: (p.approx_steps, p.latency_s))
    return (f"no plan within the quality budget: {len(fits)} plan{'s' if len(fits) > 1 else ''} fit in memory, "
            f"but each runs more than --approx-steps {approx_budget} approximate steps (the fewest: "
            f"{fewest.plan}, {fewest.approx_steps}); raise --approx-steps to {fewest.approx_steps} to allow it")


def detail(p: Prediction) -> str:
    b, m = p.breakdown, p.memory
    lines = [f"plan {p.plan}: {fmt_s(p.latency_s)} ({p.speedup:.2f}x over one GPU at {fmt_s(p.serial_latency_s)}),"
             f" steady step {p.step_s * 1e3:.1f} ms, {fidelity_words(p)}",
             f"  time:   compute {fmt_s(b.compute)}, exposed comm {fmt_s(b.comm)}"
             + (f" ({', '.join(f'{d} {fmt_s(v)}' for d, v in sorted(b.comm_dims.items()))})" if b.comm_dims else "")
             + f", warm-up {fmt_s(b.warmup)}, bubbles {fmt_s(b.bubble)}, text encoders {fmt_s(b.text_encoders)},"
             f" VAE {fmt_s(b.vae)}, overheads {fmt_s(b.other)}",
             f"  memory: {p.memory_bytes / GB:.1f} GB per GPU of {p.capacity_bytes / GB:.0f} GB"
             f" ({'fits' if p.fits else 'DOES NOT FIT'}): weights {m.weights / GB:.1f}, text encoders "
             f"{m.text_encoders / GB:.1f}, activations {m.activations / GB:.1f}, buffers {m.buffers / GB:.1f}, "
             f"VAE {m.vae / GB:.1f}, runtime {m.runtime / GB:.1f}",
             f"  traffic: {p.comm_bytes_per_step / 1e6:.1f} MB sent per rank per step"]
    lines += [f"  note: {n}" for n in p.notes]
    return "\n".join(lines)


def ilp_lines(res) -> list[str]:
    """What the integer programs changed (planner/search.SearchResult), in words."""
    lines = []
    rec = res.recommended
    pl = res.placement_of(rec.plan) if rec else None
    if pl is not None and pl.xdit_order:
        if pl.moved:
            lines.append(f"placement: {' < '.join(pl.order)} (inner < outer) is {pl.gain:.1%} faster "
                         f"than xDiT's order {' < '.join(pl.xdit_order)} "
                         f"({pl.xdit_latency_s:.4g} s -> {pl.latency_s:.4g} s)")
        else:
            lines.append(f"placement: xDiT's order {' < '.join(pl.xdit_order)} is already the best found"
                         + ("" if tuple(pl.order) == tuple(pl.xdit_order) else f" (tied with {' < '.join(pl.order)})"))
    sch = res.schedule
    if sch is not None:
        sol = sch.schedule.info.to_dict() if sch.schedule.info else {"gap": None, "status": "no solution in time"}
        gap = f"{sol['gap']:.1%}" if sol["gap"] is not None else "open"
        how = ("integer program optimal" if sol["status"] == "optimal" else
               f"optimal by the exact DP; CBC stopped at its time limit, gap {gap}"
               if sch.optimal else f"best found, gap {gap}")
        lines.append(f"switching schedule: {sch.plan} ({sch.schedule.approx_steps} approximate steps; {how})")
    split = res.hetero.token_split if res.hetero else None
    if split is not None:
        rows = "; ".join(f"{'+'.join(split.gpus[r].id for r in g)}: rows {list(s.rows)}"
                         for g, s in list(zip(split.groups, split.splits))[:2])
        lines.append(f"unequal token split by GPU speed: {rows}")
    return lines
