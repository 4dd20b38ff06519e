"""Enumerate every legal plan for the GPU count, predict each, and rank them.

The strategies' compatibility table (planner/strategies COMPATIBLE) is a graph; its maximal
cliques are the families of hybrids (e.g. {cfg, dp, pipefusion, ulysses, ring, tp} or
{cfg, dp, distrifusion}). Within a family every factorisation of the GPU count over the
family's keys is a candidate, with each degree capped by what can ever be legal
(Strategy.cap: cfg <= 2, dp <= batch, ulysses and tp <= heads, sequence splits <= latent
rows, stages <= blocks), so the enumeration stays small even for 1,024 GPUs. Variants
(Strategy.variants): PipeFusion with M = N and M = 2N patches, AsyncDiff with stride 1
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

import time
from dataclasses import dataclass, field

import networkx as nx

from .cluster import Cluster
from .cost.predict import predict, serial_latency
from .hardware import Profile
from .ilp import SOLVERS
from .ilp.hetero import HeteroSplit, hetero_split
from .ilp.placement import Placement, place
from .ilp.schedule_modes import ScheduleChoice, best_schedule
from .layout import XDIT_ORDER, ordered_layout
from .legality import plan_errors
from .plan import SERIAL, Plan, factorisations, make_plan
from .spec import ModelSpec, Prediction, Scenario
from .strategies import PAIRS, REGISTRY, STRATEGIES, is_recommendable
from .timeline import Timeline


@dataclass
class SearchResult:
    """What the planner answers for one scenario and cluster, read by the text output, the
    JSON document and the report (planner/plan_cli.py, textout.py, report/plan.py)."""

    ranked: list[Prediction]                 # fitting plans by latency, then OOM plans
    recommended: Prediction | None
    serial_latency_s: float
    considered: int                          # candidates generated
    illegal: int                             # rejected by constraints
    seconds: float
    placements: list[Placement] = field(default_factory=list)   # the plans the placement program re-placed
    schedule: ScheduleChoice | None = None   # the switching schedule, if one is proposed
    ilp_seconds: float = 0.0                 # time spent in placement and schedule
    hetero: HeteroSplit | None = None        # the recommended plan's unequal splits (mixed GPUs)
    timeline: Timeline | None = None         # the shown plan's simulated first steps (detail=True)

    @property
    def shown(self) -> Prediction | None:
        """The plan the details are about: the recommended one, else the fastest."""
        return self.recommended or (self.ranked[0] if self.ranked else None)

    def placement_of(self, plan: Plan | None) -> Placement | None:
        return next((p for p in self.placements if p.plan == plan), None) if plan is not None else None

    def placed_order(self, plan: Plan | None) -> tuple[str, ...] | None:
        """The placement's order for `plan` when it beats xDiT's (Placement.moved), else None."""
        pl = self.placement_of(plan)
        return tuple(pl.order) if pl is not None and pl.moved else None

    def order_of(self, plan: Plan | None) -> tuple[str, ...]:
        """The layout order `plan`'s prediction used: the placed one, else xDiT's."""
        return self.placed_order(plan) or XDIT_ORDER


def families(include_baselines: bool) -> list[tuple[str, ...]]:
    g = nx.Graph()
    keys = [s.key for s in REGISTRY if s.recommend or include_baselines]
    g.add_nodes_from(keys)
    g.add_edges_from(tuple(p) for p in PAIRS if p <= set(keys))
    return sorted(tuple(sorted(c)) for c in nx.find_cliques(g))


def caps(model: ModelSpec, sc: Scenario) -> dict[str, int]:
    """The largest degree of each key that can ever be legal here (Strategy.cap)."""
    out = {}
    for s in REGISTRY:
        c = s.cap(model, sc)
        if c is not None:
            out[s.key] = c
    return out


def candidates(model: ModelSpec, sc: Scenario, n: int, include_baselines: bool = False):
    """Every plan (with variants) whose degrees multiply to n, within the caps."""
    seen = set()
    limits = caps(model, sc)
    for fam in families(include_baselines):
        for degrees in factorisations(n, fam, limits):
            for plan in variants(degrees):
                s = str(plan)
                if s not in seen:
                    seen.add(s)
                    yield plan
    if n == 1 and "serial" not in seen:     # no family yields it when every cap is 1
        yield SERIAL


def variants(degrees: dict[str, int]):
    """The plans the search tries for one factorisation: the strategies' variants (at most
    one strategy of a plan has any; one that returns none drops the factorisation)."""
    for k in degrees:
        options = STRATEGIES[k].variants(degrees)
        if options is not None:
            for change in options:
                yield make_plan(degrees | change)
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
           place_top: int = PLACE_TOP, schedule_time_limit: float = SCHEDULE_TIME_LIMIT,
           detail: bool = False, accept=None) -> SearchResult:
    """placement: "search" (re-place the top plans) or "xdit" (xDiT's fixed order);
    schedules: propose a switching schedule; approx_window: steps where approximate
    strategies may run in a schedule (default planner/ilp/schedule_modes.default_window);
    detail: also simulate the shown plan's timeline (SearchResult.timeline);
    accept: Plan -> bool, the plans an engine can run (planner/engines.accepts): the
    others, and a schedule it refuses, count as illegal."""
    if placement not in ("search", "xdit"):
        raise ValueError(f"placement {placement!r}: accepted: search, xdit")
    t0 = time.perf_counter()
    preds, considered, illegal = [], 0, 0
    for plan in candidates(model, sc, cluster.n, include_baselines):
        considered += 1
        if plan_errors(plan, model, sc, cluster.n) or (accept is not None and not accept(plan)):
            illegal += 1
            continue
        p = predict(plan, model, sc, cluster, profile, solvers=SOLVERS)
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
        if choice is not None and accept is not None and not accept(choice.prediction.plan):
            choice = None
        if choice is not None and placement == "search":
            pl = _place_schedule(choice, model, sc, cluster, profile)
            if pl.tried:        # some run has two dimensions: there was an order to choose
                placements.append(pl)
        if choice is not None:
            preds.append(choice.prediction)
            preds.sort(key=_rank)
    t_ilp = time.perf_counter() - t_ilp
    rec = next((p for p in preds if eligible(p, approx_budget)), None)
    res = SearchResult(preds, rec, serial_latency(model, sc, cluster, profile), considered, illegal, 0.0,
                       placements=placements, schedule=choice, ilp_seconds=t_ilp)
    _details(res, model, sc, cluster, profile, detail)
    res.seconds = time.perf_counter() - t0
    return res


def evaluate(plan: Plan, model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile,
             placement: str = "xdit", detail: bool = False) -> SearchResult:
    """One given (legal) plan, as a SearchResult of one: xDiT's layout order unless
    placement="search" (then the placement program's)."""
    t0 = time.perf_counter()
    placements = []
    if placement == "search":
        pl = place(plan, model, sc, cluster, profile)
        if pl.moved:
            pl.prediction.notes.append(pl.note())
        pred, placements = pl.prediction, [pl]
    else:
        pred = predict(plan, model, sc, cluster, profile, solvers=SOLVERS)
    res = SearchResult([pred], pred, pred.serial_latency_s, 1, 0, 0.0, placements=placements)
    _details(res, model, sc, cluster, profile, detail)
    res.seconds = time.perf_counter() - t0
    return res


def _details(res: SearchResult, model, sc, cluster, profile, detail: bool) -> None:
    """The recommended plan's unequal splits, and the shown plan's timeline, each in the
    layout order its prediction used."""
    rec, shown = res.recommended, res.shown
    if rec is not None:
        res.hetero = hetero_split(rec.plan, model, sc, cluster, profile, res.order_of(rec.plan))
    if detail and shown is not None:
        layout = ordered_layout(shown.plan, res.order_of(shown.plan))
        res.timeline = predict(shown.plan, model, sc, cluster, profile, layout=layout, detail=True,
                               solvers=SOLVERS).timeline


def eligible(p: Prediction, budget: int) -> bool:
    """The recommendation rule: fits, no baseline strategy, within the budget of
    approximate steps."""
    return p.fits and is_recommendable(p.plan) and p.approx_steps <= budget


def _place_top(preds, model, sc, cluster, profile, budget: int, top: int):
    """Re-place eligible plans with two or more dimensions (planner/ilp/placement.py);
    their predictions are replaced by the placed ones (a note names the order and the gain).

    Placement changes only communication on uniform GPUs, so the compute and host time
    on the critical rank (Prediction.fixed_s) bounds what any order can reach: plans are taken in order
    of that bound, the fastest plan first, and the scan stops when the bound passes the
    best placed latency (or after `top` plans). On mixed GPUs the order also changes
    compute (token splits, stage GPUs), so the `top` fastest plans are taken instead."""
    out, placements = list(preds), []
    idx = [i for i, p in enumerate(preds) if eligible(p, budget) and len(p.plan.degrees) > 1]
    if not idx:
        return out, placements

    def bound(i):
        return preds[i].fixed_s
    queue = idx[:1] + (sorted(idx[1:], key=bound) if cluster.uniform else idx[1:])
    best = min(preds[i].latency_s for i in idx)
    for i in queue[:top]:
        if cluster.uniform and placements and bound(i) >= best:
            break
        pl = place(preds[i].plan, model, sc, cluster, profile, xdit_pred=preds[i])
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
    pl = place(choice.prediction.plan, model, sc, cluster, profile, xdit_pred=choice.prediction)
    if pl.moved:
        pl.prediction.notes.extend(n for n in choice.prediction.notes if n not in pl.prediction.notes)
        pl.prediction.notes.append(pl.note())
        choice.prediction = pl.prediction
    return pl


def _schedule(preds, model, sc, cluster, profile, budget, window, time_limit):
    """The switching schedule, if it is faster than every eligible single plan."""
    best = next((p for p in preds if eligible(p, budget)), None)
    beat = best.latency_s - best.breakdown.text_encoders - best.breakdown.vae if best else None
    # A windowed strategy is itself a switch (Hybridiff: CFG, then a pipeline window): a
    # schedule that only matches it is still worth showing, because it says where the window goes
    gain = 0.0 if best is None or any(STRATEGIES[k].window_modifier for k in best.plan.keys) else MIN_SCHEDULE_GAIN
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
    return (not p.fits, p.latency_s * (1 - TIE if p.plan.segments else 1))
