"""Enumerate every legal plan for the GPU count, predict each, and rank them.

The strategies' `combines_with` declarations form a compatibility graph; its maximal
cliques are the families of hybrids (e.g. {cfg, dp, pipefusion, ulysses, ring, tp} or
{cfg, dp, distrifusion}). Within a family every factorisation of the GPU count over the
family's keys is a candidate, with each degree capped by what can ever be legal (cfg <= 2,
dp <= batch, ulysses and tp <= heads, sequence splits <= latent rows, stages <= blocks),
so the enumeration stays small even for 1,024 GPUs. Variants: PipeFusion with M = N and
M = 2N patches (xDiT sweeps M around N; App. B finds M = N best), AsyncDiff with stride 1
and 2. Plans that do not fit in memory are kept and ranked after those that do.

The recommendation is the fastest plan that fits, is not a baseline, and runs at most
`approx_budget` steps with an approximate ("approx"-fidelity) strategy: the user's
quality knob (--approx-steps; default 5, Hybridiff's default window, which its paper
reports as visually lossless). --exact-only keeps only exact plans.

Integer programs (planner/ilp, docs/ilp.md) refine the ranking: the top few plans are
re-placed on the topology (layout order chosen instead of xDiT's fixed one), and a
switching schedule over the best plans of each family is added when it is faster than
every single plan (e.g. `cfg=2 | 11-15: hybridiff=2 k=5`). Pipeline cuts (cost-balanced,
memory caps, unequal GPUs) and unequal token splits happen inside predict().
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import networkx as nx

from .cluster import Cluster
from .cost.predict import predict, serial_latency
from .hardware import Profile
from .legality import plan_errors
from .plan import Plan, factorisations, make_plan
from .spec import ModelSpec, Prediction, Scenario
from .strategies import STRATEGIES


@dataclass
class SearchResult:
    ranked: list[Prediction]                 # fitting plans by latency, then OOM plans
    recommended: Prediction | None
    serial_latency_s: float
    considered: int                          # candidates generated
    illegal: int                             # rejected by constraints
    seconds: float
    notes: list[str] = field(default_factory=list)
    placements: list = field(default_factory=list)   # planner.ilp.placement.Placement of re-placed plans
    schedule: object | None = None                   # planner.ilp.schedule_modes.ScheduleChoice, if any
    ilp_seconds: float = 0.0                         # time spent in placement and schedule

    def ilp_dict(self) -> dict:
        """What the integer programs chose, for `plan --json` ("ilp")."""
        rec = self.recommended.plan if self.recommended else None
        mine = next((p for p in self.placements if p.plan == rec), None)
        return {"placement": mine.to_dict() if mine else None,
                "placements": [p.to_dict() for p in self.placements],
                "schedule": self.schedule.to_dict() if self.schedule else None,
                "seconds": round(self.ilp_seconds, 3)}


def families(include_baselines: bool) -> list[tuple[str, ...]]:
    g = nx.Graph()
    keys = [k for k, s in STRATEGIES.items() if k != "serial" and (s.recommend or include_baselines)]
    g.add_nodes_from(keys)
    for a in keys:
        for b in keys:
            if a < b and b in STRATEGIES[a].combines_with and a in STRATEGIES[b].combines_with:
                g.add_edge(a, b)
    return sorted(tuple(sorted(c)) for c in nx.find_cliques(g))


def _caps(model: ModelSpec, sc: Scenario) -> dict[str, int]:
    heads = math.gcd(*model.attention_heads()) if model.attention_heads() else 1
    rows = model.latent_rows()
    blocks = len(model.blocks)
    return {"cfg": 2 if sc.cfg else 1, "hybridiff": 2 if sc.cfg else 1, "dp": sc.batch,
            "ulysses": heads, "tp": heads, "ring": rows, "distrifusion": rows, "sync_patch": rows,
            "naive_patch": rows, "pipefusion": blocks, "asyncdiff": blocks, "paradigms": sc.steps,
            "parastep": sc.steps, "dsp": rows if model.facts.factorised_attention else 1}


def candidates(model: ModelSpec, sc: Scenario, n: int, include_baselines: bool = False):
    """Every plan (with variants) whose degrees multiply to n, within the caps."""
    seen = set()
    caps = _caps(model, sc)
    for fam in families(include_baselines):
        for degrees in factorisations(n, fam, caps):
            for plan in _variants(degrees):
                s = str(plan)
                if s not in seen:
                    seen.add(s)
                    yield plan
    if n == 1 and "serial" not in seen:     # no family yields it when every cap is 1
        yield Plan()


def _variants(degrees: dict[str, int]):
    if "hybridiff" in degrees and degrees["hybridiff"] != 2:
        return
    if "pipefusion" in degrees:
        pp = degrees["pipefusion"]
        yield make_plan(degrees)
        yield make_plan(degrees | {"patches": 2 * pp})
        return
    if "asyncdiff" in degrees:
        g = degrees["asyncdiff"]          # GPUs along the AsyncDiff dimension
        if g >= 2:
            yield make_plan(degrees)
        if g >= 3:
            yield make_plan(degrees | {"asyncdiff": g - 1, "stride": 2})
        return
    yield make_plan(degrees)


DEFAULT_APPROX_STEPS = 5
TIE = 1e-9               # relative: equal latencies (see planner/ilp/schedule_modes.TIE)
# CBC's limit for the schedule program inside the search. It starts from the exact DP's
# schedule, so stopping early only leaves the proof (the gap) open, never the answer.
SCHEDULE_TIME_LIMIT = 0.05
# A switching schedule is proposed only when it beats the best single plan by this much:
# every switch is a re-shard and one more code path to run, not worth a percent or two.
MIN_SCHEDULE_GAIN = 0.03
PLACE_TOP = 3            # most plans re-placed by the placement program (each costs a few predicts)


def search(model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile, exact_only: bool = False,
           include_baselines: bool = False, approx_budget: int = DEFAULT_APPROX_STEPS,
           schedules: bool = True, placement: str = "search", approx_window: tuple[int, int] | None = None,
           place_top: int = PLACE_TOP, schedule_time_limit: float = SCHEDULE_TIME_LIMIT) -> SearchResult:
    """placement: "search" (re-place the top plans) or "xdit" (xDiT's fixed order);
    schedules: propose a switching schedule; approx_window: steps where approximate
    strategies may run in a schedule (default planner/ilp/schedule_modes.default_window)."""
    if placement not in ("search", "xdit"):
        raise ValueError(f"placement {placement!r}: accepted: search, xdit")
    t0 = time.perf_counter()
    preds, considered, illegal = [], 0, 0
    for plan in candidates(model, sc, cluster.n, include_baselines):
        considered += 1
        if plan_errors(plan, model, sc, cluster.n):
            illegal += 1
            continue
        p = predict(plan, model, sc, cluster, profile)
        if exact_only and not p.exact:
            continue
        preds.append(p)
    preds.sort(key=lambda p: (not p.fits, p.latency_s))
    t_ilp = time.perf_counter()
    placements, choice = [], None
    if placement == "search":
        preds, placements = _place_top(preds, model, sc, cluster, profile, approx_budget, place_top)
    if schedules and not exact_only and cluster.n > 1:
        choice = _schedule(preds, model, sc, cluster, profile, approx_budget, approx_window,
                           schedule_time_limit)
        if choice is not None and placement == "search":
            pl = _place_schedule(choice, model, sc, cluster, profile)
            if pl.tried:        # some run has two dimensions: there was an order to choose
                placements.append(pl)
        if choice is not None:
            preds.append(choice.prediction)
            preds.sort(key=_rank)
    t_ilp = time.perf_counter() - t_ilp
    rec = next((p for p in preds if p.fits and _recommendable(p.plan) and p.approx_steps <= approx_budget), None)
    return SearchResult(preds, rec, serial_latency(model, sc, cluster, profile), considered, illegal,
                        time.perf_counter() - t0, placements=placements, schedule=choice, ilp_seconds=t_ilp)


def _eligible(p: Prediction, budget: int) -> bool:
    return p.fits and _recommendable(p.plan) and p.approx_steps <= budget


def _place_top(preds, model, sc, cluster, profile, budget: int, top: int):
    """Re-place eligible plans with two or more dimensions (planner/ilp/placement.py);
    their predictions are replaced by the placed ones (a note names the order and the gain).

    Placement changes only communication on uniform GPUs, so latency minus exposed
    communication and bubbles bounds what any order can reach: plans are taken in order
    of that bound, the fastest plan first, and the scan stops when the bound passes the
    best placed latency (or after `top` plans). On mixed GPUs the order also changes
    compute (token splits, stage GPUs), so the `top` fastest plans are taken instead."""
    from .ilp.placement import place
    from .layout import dimension_sizes
    from .plan import parse_plan
    out, placements = list(preds), []
    idx = [i for i, p in enumerate(preds) if _eligible(p, budget) and len(dimension_sizes(parse_plan(p.plan))) > 1]
    if not idx:
        return out, placements

    def bound(i):
        b = preds[i].breakdown
        return preds[i].latency_s - b.comm - b.bubble
    queue = idx[:1] + (sorted(idx[1:], key=bound) if cluster.uniform else idx[1:])
    best = min(preds[i].latency_s for i in idx)
    for i in queue[:top]:
        if cluster.uniform and placements and bound(i) >= best:
            break
        pl = place(parse_plan(preds[i].plan), model, sc, cluster, profile, xdit_pred=preds[i])
        placements.append(pl)
        best = min(best, pl.latency_s)
        if pl.moved:
            pl.prediction.notes.append(pl.note())
            out[i] = pl.prediction
    out.sort(key=lambda p: (not p.fits, p.latency_s))
    return out, placements


def _place_schedule(choice, model, sc, cluster, profile):
    """Re-place the schedule's runs (planner/ilp/placement.place_schedule); a faster
    order replaces the schedule's prediction, with a note."""
    from .ilp.placement import place
    from .plan import parse_plan
    pl = place(parse_plan(choice.prediction.plan), model, sc, cluster, profile, xdit_pred=choice.prediction)
    if pl.moved:
        pl.prediction.notes.extend(n for n in choice.prediction.notes if n not in pl.prediction.notes)
        pl.prediction.notes.append(pl.note())
        choice.prediction = pl.prediction
    return pl


def _schedule(preds, model, sc, cluster, profile, budget, window, time_limit):
    """The switching schedule, if it is faster than every eligible single plan."""
    from .ilp.schedule_modes import best_schedule
    best = next((p for p in preds if _eligible(p, budget)), None)
    beat = best.latency_s - best.breakdown.text_encoders - best.breakdown.vae if best else None
    # Hybridiff is itself a switch (CFG, then a pipeline window): a schedule that only
    # matches it is still worth showing, because it says where the window goes
    gain = 0.0 if best is None or "hybridiff" in best.plan else MIN_SCHEDULE_GAIN
    need = beat - best.latency_s * gain / (1 + gain) if best else None
    choice = best_schedule(preds, model, sc, cluster, profile, budget, window, time_limit=time_limit,
                           must_beat_s=need)
    if choice is None or not choice.prediction.fits:
        return None
    if best is not None and choice.prediction.latency_s * (1 + gain) > best.latency_s * (1 + TIE):
        return None
    gain = best.latency_s / choice.prediction.latency_s - 1 if best else 0.0
    choice.prediction.notes.append(f"switching schedule (integer program): {gain:.2%} faster than the best "
                                   f"single plan" + (f" {best.plan}" if best else ""))
    return choice


def _rank(p: Prediction):
    """Fitting plans first, by latency; a schedule ranks before a single plan it ties with."""
    return (not p.fits, p.latency_s * (1 - TIE if "|" in p.plan else 1))


def _recommendable(plan_str: str) -> bool:
    return all(STRATEGIES[item.split("=")[0]].recommend
               for item in plan_str.split() if "=" in item and item.split("=")[0] in STRATEGIES)
