"""From the search's plans to schedule modes, and from the solved schedule to a plan string.

Candidates (the modes of planner/ilp/schedule.py) are legal plans on the same GPUs: the
fastest few from the search (by steady step and by whole latency, one per family of
strategy keys), the fastest exact plan (so a schedule always has an exact fallback), and
windows (Strategy.window_modifier): `hybridiff=2 k=n` over a run of n steps is n steps of
Hybridiff's two-stage pipeline (planner/strategies/hybridiff.py, its in/out re-shard
included), opened out of the plan it must follow (Strategy.entered_from). Strategies
whose one run spans the whole trajectory (Strategy.in_segments: ParaDiGMS's Picard
window) are left out: a run of them is not a plan of its own.

A mode's run cost f(n) is the plan's own denoising loop over n steps, evaluated by the
cost engine exactly as predict() evaluates a schedule's run (same Engine, same
schedule function, same layout order); its increments are split into prefix and cycle
by `automaton`, and the split is checked against f(T) computed directly.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

from ..cost.engine import Engine, denoise
from ..cost.predict import predict, reshard_s
from ..layout import XDIT_ORDER, layout_for, ordered_layout
from ..plan import Plan, Segment
from ..strategies import STRATEGIES, approx_steps, is_recommendable, warmup_steps
from . import SOLVERS
from .schedule import Mode, Schedule, dp_schedule, evaluate, solve_schedule

MAX_MODES = 7          # candidate plans per schedule (besides Hybridiff windows)
ILP_MODES = 4          # modes in the integer program (see best_schedule)
REL_TOL = 1e-9
# A schedule as fast as the best single plan (within this) is still proposed: it says
# which steps switch, e.g. `cfg=2 | 11-15: hybridiff=2 k=5` is Hybridiff's own plan with
# its window placed.
TIE = 1e-9


def default_window(steps: int) -> tuple[int, int]:
    """Steps where approximate strategies may run. ASSUMED: the middle 60% of the
    trajectory. Early steps fix the layout and late steps the detail; ParaStep reports
    its errors growing at both ends, and Hybridiff's SDXL window opens by step 15 of 50
    (tau_cap) and closes 5 steps later, inside this range (methods.md 7, 9)."""
    edge = steps // 5
    return (edge + 1, steps - edge) if steps - 2 * edge >= 1 else (1, steps)


def window_of(plan: Plan) -> str | None:
    """The modifier that sets the length of the plan's window (Strategy.window_modifier), if any."""
    return next((STRATEGIES[k].window_modifier for k in plan.keys if STRATEGIES[k].window_modifier), None)


def entered_from(plan: Plan) -> Plan | None:
    """The plan a window of `plan` must open out of (Strategy.entered_from), if any."""
    return next((p for k in plan.keys if (p := STRATEGIES[k].entered_from(plan)) is not None), None)


@dataclass(frozen=True)
class Candidate:
    plan: Plan
    windowed: bool = False     # the run is the plan's window, its modifier = the run's length

    def at(self, n: int) -> Plan:
        """The plan of a run of n steps."""
        return self.plan.replace(**{window_of(self.plan): n}) if self.windowed else self.plan

    def opens_after(self) -> tuple[str, ...]:
        """Plans a run of this candidate must follow (schedule.Mode.after): Hybridiff's
        window opens out of its own CFG-parallel phase, the plan with cfg in its place."""
        return (str(entered_from(self.plan)),) if self.windowed else ()


def _engine_for(eng: Engine, plan: Plan, n: int) -> Engine:
    """The engine of `plan` over n steps, sharing eng's per-block cost cache (block costs
    do not depend on the step count or on Hybridiff's k)."""
    e = copy.copy(eng)
    e.sc = dataclasses.replace(eng.sc, steps=n)
    e.plan = plan
    return e


def automaton(costs: list[float], approx: list[int], max_period: int):
    """Split the increments of f (f(1..N)) into a prefix and a repeating cycle.
    Returns (prefix, cycle, approx_prefix, approx_cycle) with the shortest prefix+cycle
    that repeats at least twice within the data, or None."""
    d = [costs[0]] + [b - a for a, b in zip(costs, costs[1:])]
    a = [bool(approx[0])] + [bool(y - x) for x, y in zip(approx, approx[1:])]
    n = len(d)

    def same(i, j):
        return abs(d[i] - d[j]) <= REL_TOL * max(abs(d[i]), abs(d[j]), 1e-12) and a[i] == a[j]
    for length in range(1, n + 1):
        for period in range(1, min(max_period, length) + 1):
            k = length - period
            if k + 2 * period > n:
                continue
            if all(same(i, k + (i - k) % period) for i in range(k, n)):
                return tuple(d[:k]), tuple(d[k:length]), tuple(a[:k]), tuple(a[k:length])
    return None


def make_mode(cand: Candidate, model, sc, cluster, profile, order=XDIT_ORDER) -> Mode:
    plan = cand.plan
    eng = Engine(model, sc, cluster, profile, plan, layout_for(plan, order), SOLVERS)
    warm = warmup_steps(plan)
    # steps one round finishes: AsyncDiff's stride S, ParaStep's degree (a run's cost
    # grows by a round every that many steps)
    period = max(STRATEGIES[k].round_steps(d, plan) for k, d in plan.degrees) if plan.degrees else 1
    n0 = min(sc.steps, warm + 4 + 3 * period)

    def f(n):
        p = cand.at(n)
        return denoise(_engine_for(eng, p, n), False).total, approx_steps(p, n)
    vals = [f(n) for n in range(1, n0 + 1)]
    auto = automaton([v[0] for v in vals], [v[1] for v in vals], period)
    mode = None
    if auto is not None:
        mode = Mode(str(cand.at(1)), *auto, out_s=reshard_s(eng), after=cand.opens_after(), data=cand)
        full_cost, full_approx = f(sc.steps)
        if (abs(mode.run_cost(sc.steps) - full_cost) > 1e-9 * full_cost
                or mode.run_approx(sc.steps) != full_approx):
            mode = None
    if mode is None:   # no short pattern: every increment up to T (exact, slower)
        vals = [f(n) for n in range(1, sc.steps + 1)]
        c, a = [v[0] for v in vals], [v[1] for v in vals]
        d = [c[0]] + [y - x for x, y in zip(c, c[1:])]
        ap = [bool(a[0])] + [bool(y - x) for x, y in zip(a, a[1:])]
        mode = Mode(str(cand.at(1)), tuple(d[:-1]), (d[-1],), tuple(ap[:-1]), (ap[-1],),
                    out_s=reshard_s(eng), after=cand.opens_after(), data=cand)
    return mode


def candidates(preds, exact_only: bool = False) -> list[Candidate]:
    """Fitting single plans of the search (Prediction list, fastest first) -> modes."""
    fit = [p for p in preds if p.fits and not p.plan.segments and is_recommendable(p.plan)
           and all(STRATEGIES[k].in_segments for k in p.plan.keys) and (p.exact or not exact_only)]
    chosen: list[Plan] = []

    def take(ps, limit):
        fams = {frozenset(q.keys) for q in chosen}
        for p in ps:
            fam = frozenset(p.plan.keys)
            if len(chosen) >= limit:
                return
            if p.plan not in chosen and fam not in fams and window_of(p.plan) is None:
                chosen.append(p.plan)
                fams.add(fam)
    exact = [p for p in fit if p.exact]
    if exact:
        chosen.append(exact[0].plan)
    take(sorted(fit, key=lambda p: p.step_s), MAX_MODES // 2 + 1)
    take(fit, MAX_MODES)
    out = [Candidate(p) for p in chosen]
    if not exact_only:
        windows = [Candidate(p.plan.replace(**{window_of(p.plan): None}), windowed=True)
                   for p in fit if window_of(p.plan) is not None][:2]
        for w in windows:     # a window needs the plan it opens out of among the candidates
            before = entered_from(w.plan)
            if before is not None and before not in {c.plan for c in out} and any(p.plan == before for p in fit):
                out.append(Candidate(before))
        out += windows
    return out


def dominated(modes: list[Mode]) -> list[int]:
    """Modes no optimal schedule needs: B is dominated by a steady, never-approximate mode
    A (one phase) with A's step cost <= every step cost of B and A's switch costs <= B's
    (replace any run of B by A: no step costs more, nothing becomes approximate, and
    neighbouring runs of A merge, which removes switches). Pruning them keeps the integer
    program small without changing its optimum."""
    out = []
    for b, mb in enumerate(modes):
        lowest = min(min(mb.prefix, default=float("inf")), min(mb.cycle))
        for a, ma in enumerate(modes):
            if a == b or ma.phases != 1 or ma.step_approx(0):
                continue
            if ma.cycle[0] <= lowest and ma.out_s <= mb.out_s and ma.in_s <= mb.in_s \
                    and (ma.cycle[0] < lowest or a < b or mb.phases > 1 or mb.step_approx(0)):
                out.append(b)
                break
    return out


def to_plan(sched: Schedule, modes: list[Mode]) -> Plan:
    """The schedule as a plan string: the base plan is the mode run for most steps
    (preferring one with no approximate steps, so the base is never the approximate
    part); every other run is a segment."""
    steps_of: dict[int, int] = {}
    approx_of: dict[int, int] = {}
    for m, a, b in sched.runs:
        steps_of[m] = steps_of.get(m, 0) + b - a + 1
        approx_of[m] = approx_of.get(m, 0) + modes[m].run_approx(b - a + 1)
    base = max(steps_of, key=lambda m: (approx_of[m] == 0 and not modes[m].data.windowed, steps_of[m]))
    segs = tuple(Segment(a, b, modes[m].data.at(b - a + 1)) for m, a, b in sched.runs if m != base)
    bp = modes[base].data.at(steps_of[base])
    return Plan(bp.degrees, bp.modifiers, segs, bp.spans)


@dataclass
class ScheduleChoice:
    plan: Plan
    prediction: object            # spec.Prediction of the schedule plan
    schedule: Schedule
    modes: list[Mode]
    objective_s: float            # the program's denoising time
    predicted_denoise_s: float    # predict()'s denoising time of the plan string
    dp_s: float = float("nan")    # the exact DP's optimum (schedule.dp_schedule)

    @property
    def optimal(self) -> bool:
        """Proven optimal: by CBC, or because the exact DP reaches the same time (the DP
        enumerates every (step, mode, phase, budget used) state; tests check it against
        brute force), when CBC stopped at its time limit before closing the gap."""
        return bool(self.schedule.info and self.schedule.info.optimal) or \
            self.objective_s <= self.dp_s * (1 + 1e-9)

    def to_dict(self) -> dict:
        return {"plan": str(self.plan), "objective_s": round(self.objective_s, 6),
                "predict_denoise_s": round(self.predicted_denoise_s, 6), "dp_optimum_s": round(self.dp_s, 6),
                "optimal": self.optimal, "candidates": [m.name for m in self.modes],
                "approx_steps": self.schedule.approx_steps,
                "solver": self.schedule.info.to_dict() if self.schedule.info else None}


def best_schedule(preds, model, sc, cluster, profile, budget: int, window=None, order=XDIT_ORDER,
                  exact_only: bool = False, time_limit: float = 5.0,
                  must_beat_s: float | None = None) -> ScheduleChoice | None:
    """The cheapest switching schedule over the search's plans, or None when the best
    schedule is a single plan (no switch pays off) or there is nothing to switch between.
    must_beat_s: denoising seconds of the best single plan; when the exact DP
    (schedule.dp_schedule) proves no schedule is faster, the integer program is skipped."""
    cands = candidates(preds, exact_only)
    if len(cands) < 2:
        return None
    modes = [make_mode(c, model, sc, cluster, profile, order) for c in cands]
    drop = set(dominated(modes))
    modes = [m for i, m in enumerate(modes) if i not in drop]
    if len(modes) < 2:
        return None
    window = window or default_window(sc.steps)
    quick = dp_schedule(modes, sc.steps, budget, window)
    dp_s = evaluate(modes, quick)[0] if quick else float("inf")
    if quick is None or len(quick) < 2 or (must_beat_s is not None and dp_s > must_beat_s * (1 + TIE)):
        return None          # provably nothing to gain: the DP is exact
    # The integer program gets the modes the exact DP's schedule uses plus the cheapest
    # others up to ILP_MODES: its size (and CBC's time) grows with modes x phases x steps,
    # and every mode left out is one the DP's optimum proves unnecessary.
    used = sorted({m for m, _, _ in quick})
    rest = sorted((i for i in range(len(modes)) if i not in used), key=lambda i: min(modes[i].cycle))
    keep = used + rest[:max(0, ILP_MODES - len(used))]
    modes = [modes[i] for i in sorted(keep)]
    sched = solve_schedule(modes, sc.steps, budget, window, time_limit)
    if len(sched.runs) < 2:
        return None
    plan = to_plan(sched, modes)
    # predict() orders a schedule's runs by the layout's order; a layout of size-1
    # dimensions carries the full order the modes were costed with
    pred = predict(plan, model, sc, cluster, profile, layout=ordered_layout(plan, order), solvers=SOLVERS)
    den = pred.latency_s - pred.breakdown.text_encoders - pred.breakdown.vae
    return ScheduleChoice(plan, pred, sched, modes, sched.objective, den, dp_s)
