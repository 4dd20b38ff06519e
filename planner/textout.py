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
        rows.append(f"{i:>3}{mark} {p.plan:<34} {fmt_s(p.latency_s):>9} {p.speedup:>7.2f}x "
                    f"{p.memory_bytes / GB:>7.1f} {'yes' if p.fits else 'OOM':>4} {fidelity(p):>9}"
                    f"   {fmt_s(b.compute):>8} {fmt_s(b.comm):>8} {fmt_s(b.bubble):>8} "
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
    den = b.compute + b.comm + b.bubble + b.other
    if den > 0:
        out.append(f"{rec.plan}: {100 * b.compute / den:.0f}% of its denoising time is compute, "
                   f"{100 * b.comm / den:.0f}% exposed communication, {100 * b.bubble / den:.0f}% warm-up "
                   f"and pipeline bubbles.")
    seen = {rec.plan}
    for p in preds:
        if len(out) >= 4:
            break
        family = p.plan.split("=")[0]
        if p.plan in seen or any(s.startswith(family) for s in seen):
            continue
        seen.add(p.plan)
        pb = p.breakdown
        loss = {"exposed communication": pb.comm - b.comm, "warm-up and bubbles": pb.bubble - b.bubble,
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
             f"  time:   compute {fmt_s(b.compute)}, exposed comm {fmt_s(b.comm)}, warm-up/bubbles {fmt_s(b.bubble)},"
             f" text encoders {fmt_s(b.text_encoders)}, VAE {fmt_s(b.vae)}, overheads {fmt_s(b.other)}",
             f"  memory: {p.memory_bytes / GB:.1f} GB per GPU of {p.capacity_bytes / GB:.0f} GB"
             f" ({'fits' if p.fits else 'DOES NOT FIT'}): weights {m.weights / GB:.1f}, text encoders "
             f"{m.text_encoders / GB:.1f}, activations {m.activations / GB:.1f}, buffers {m.buffers / GB:.1f}, "
             f"VAE {m.vae / GB:.1f}, runtime {m.runtime / GB:.1f}",
             f"  traffic: {p.comm_bytes_per_step / 1e6:.1f} MB sent per rank per step"]
    lines += [f"  note: {n}" for n in p.notes]
    return "\n".join(lines)
