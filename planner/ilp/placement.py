"""Placement: which parallel dimension is innermost, which crosses sockets or nodes.

Ranks are numbered so that neighbours are close (planner/cluster.py), and a layout puts
the plan's dimensions on them in mixed radix, innermost first (planner/layout.py). xDiT
fixes the order tp, sp (ulysses, ring), pp, cfg, dp; here it is chosen.

A dimension's groups depend only on its *stride*, the product of the sizes of the
dimensions inside it (planner/layout.Layout.groups). So the cost model gives, for each
dimension d and each stride s it could have, a cost c[d][s]: the seconds its own
communication adds to the denoising loop when its groups sit at stride s and every
other dimension is local (planner/cost/engine.Engine on a probe layout; for the
dimension that owns the step schedule, its whole schedule; for the others, their
exposed per-block and per-step communication). The order is then an integer program
(linear ordering, as in Alpa/nnScaler's ILPs over discrete choices with costs from
the cost model):
    o[a,b] in {0,1}  a is inside b;   o[a,b] + o[b,a] = 1;   o[a,b] + o[b,c] + o[c,a] <= 2
    y[d,s] in {0,1}  d has stride s;  sum_s y[d,s] = 1
    for every prime q:  sum_s y[d,s] e_q(s) = sum_a o[a,d] e_q(size_a)   (stride = product of
                        the inner sizes, written in prime exponents so it stays linear)
    minimise sum c[d][s] y[d,s]
The sum is separable by construction; interactions (two dimensions' traffic sharing a
link at the same time, a pipeline multiplying a sequence split's traffic) are not in
it. So the best few orders of the program (no-good cuts) and xDiT's order are
re-evaluated with the full predict(), and the fastest is kept: the answer is never
predicted slower than xDiT's order. A plan with two dimensions has two orders; both are
simply predicted.

A switching schedule (`cfg=2 pipefusion=4 | 8-12: cfg=2 parastep=4`) has one order for all
its runs, as predict() lays schedules out: each run places the dimensions it has in that
order. Its runs have few dimensions, so every order that lays out some run differently
is predicted whole (place_schedule).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pulp

from ..cost.engine import Engine, denoise
from ..cost.predict import predict, schedule_runs
from ..layout import XDIT_ORDER, Layout, dimension_names, dimension_sizes, layout_for, ordered_layout
from ..plan import Plan
from ..strategies import STRATEGIES, loop_strategy
from . import SOLVERS
from .solver import SolveError, SolveInfo, is_one, new_var, solve

K_BEST = 2
TIME_LIMIT = 2.0
# A schedule whose dimensions have more orders than this is placed by its runs' own
# placements instead of every order (5 dimensions: 120 whole-schedule predictions)
MAX_SCHEDULE_ORDERS = 24
# A placement this much faster than xDiT's order or less is reported as a tie with it
# (0.05%: below the cost model's resolution, e.g. 0.8144 s -> 0.8142 s)
TIE_GAIN = 0.0005


@dataclass
class Placement:
    plan: Plan
    order: tuple[str, ...]          # chosen, inner -> outer
    latency_s: float                # predict() with the chosen order
    xdit_order: tuple[str, ...]
    xdit_latency_s: float
    prediction: object = None       # spec.Prediction with the chosen order
    info: SolveInfo | None = None
    tried: int = 0                  # orders evaluated with predict()

    @property
    def moved(self) -> bool:
        """The order beats xDiT's by more than a tie (TIE_GAIN)."""
        return _beats_xdit(self.order, self.xdit_order, self.gain)

    def note(self) -> str:
        return (f"layout (inner < outer): {' < '.join(self.order)}; {self.gain:.1%} faster than "
                f"xDiT's order {' < '.join(self.xdit_order)} ({self.xdit_latency_s:.4g} s)")

    @property
    def gain(self) -> float:
        """Speed-up over xDiT's order minus one (0.10: xDiT's order is predicted 10% slower)."""
        return self.xdit_latency_s / self.latency_s - 1.0 if self.latency_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {"plan": str(self.plan), "order": list(self.order), "latency_s": round(self.latency_s, 6),
                "xdit_order": list(self.xdit_order), "xdit_latency_s": round(self.xdit_latency_s, 6),
                "gain": round(self.gain, 4), "orders_predicted": self.tried,
                "solver": self.info.to_dict() if self.info else None}


def _factor(n: int) -> dict[int, int]:
    out, q = {}, 2
    while q * q <= n:
        while n % q == 0:
            out[q] = out.get(q, 0) + 1
            n //= q
        q += 1
    if n > 1:
        out[n] = out.get(n, 0) + 1
    return out


def _beats_xdit(order, xdit_order, gain: float) -> bool:
    return tuple(order) != tuple(xdit_order) and gain >= TIE_GAIN


def stride_options(sizes: dict[str, int]) -> dict[str, list[int]]:
    """Strides each dimension can have: products of subsets of the other sizes."""
    out = {}
    for d in sizes:
        others = [sizes[a] for a in sizes if a != d]
        prods = {math.prod(c) for r in range(len(others) + 1) for c in itertools.combinations(others, r)}
        out[d] = sorted(prods)
    return out


def _probe(plan: Plan, dim: str, size: int, stride: int, n: int) -> Layout:
    """A layout where only `dim` has real groups, at `stride` (others are one rank)."""
    return Layout((("_inner", stride), (dim, size), ("_outer", n // (stride * size))))


def stride_costs(plan: Plan, model, sc, cluster, profile) -> dict[str, dict[int, float]]:
    """c[d][s]: seconds dimension d's communication costs at stride s (module doc)."""
    sizes = dimension_sizes(plan)
    n = math.prod(sizes.values())
    owner = loop_strategy(plan)
    # how often a rank runs each block it holds per step, relative to once per block (a
    # PipeFusion stage holds 1/N of the blocks and runs them once per patch)
    calls = math.prod(STRATEGIES[k].block_calls(d, plan) for k, d in plan.degrees)
    out: dict[str, dict[int, float]] = {}
    for d, strides in stride_options(sizes).items():
        out[d] = {}
        for s in strides:
            eng = Engine(model, sc, cluster, profile, plan, _probe(plan, d, sizes[d], s, n), SOLVERS)
            if owner is not None and d == owner.key:
                out[d][s] = denoise(eng, False).total
                continue
            costs = eng.block_costs(keys=(d,))
            comp = float(costs.compute.sum())
            warm = eng.warmup_steps()
            steady = costs.pass_time(eta=eng.eta) - comp
            sync = costs.pass_time(eta=eng.eta, sync=True) - comp
            after = sum(eng.comm_time(c) for c in eng.step_comms() if c.dim == d)
            out[d][s] = calls * (warm * sync + (sc.steps - warm) * steady) + sc.steps * after
    return out


def solve_orders(sizes: dict[str, int], costs: dict[str, dict[int, float]], k: int = K_BEST,
                 time_limit: float = TIME_LIMIT) -> tuple[list[tuple[tuple[str, ...], float]], SolveInfo | None]:
    """The k cheapest orders (inner -> outer) by the separable cost, and the first solve's info."""
    dims = list(sizes)
    if len(dims) <= 1:
        return [(tuple(dims), sum(costs[d][1] for d in dims))], None
    prob = pulp.LpProblem("placement", pulp.LpMinimize)
    o = {(a, b): new_var(prob, f"o_{i}_{j}", cat="Binary")
         for i, a in enumerate(dims) for j, b in enumerate(dims) if a != b}
    y = {(d, s): new_var(prob, f"y_{i}_{s}", cat="Binary") for i, d in enumerate(dims) for s in costs[d]}
    for i, a in enumerate(dims):
        for b in dims[i + 1:]:
            prob += o[a, b] + o[b, a] == 1
    for a, b, c in itertools.permutations(dims, 3):
        prob += o[a, b] + o[b, c] + o[c, a] <= 2
    primes = sorted({q for v in sizes.values() for q in _factor(v)})
    for d in dims:
        prob += pulp.lpSum(y[d, s] for s in costs[d]) == 1
        for q in primes:
            prob += (pulp.lpSum(_factor(s).get(q, 0) * y[d, s] for s in costs[d])
                     == pulp.lpSum(_factor(sizes[a]).get(q, 0) * o[a, d] for a in dims if a != d))
    prob += pulp.lpSum(costs[d][s] * v for (d, s), v in y.items())
    found, first = [], None
    for _ in range(k):
        try:
            info = solve(prob, time_limit, "placement")
        except SolveError:      # every order already found
            break
        first = first or info
        inner = {d: sum(is_one(o[a, d]) for a in dims if a != d) for d in dims}
        order = tuple(sorted(dims, key=lambda d: inner[d]))
        found.append((order, info.objective))
        # no-good cut: the next solution differs in at least one pair
        ones = [o[a, b] for (a, b) in o if is_one(o[a, b])]
        prob += pulp.lpSum(ones) <= len(ones) - 1
        if len(found) == math.factorial(len(dims)):
            break
    return found, first


def order_cost(order: tuple[str, ...], sizes: dict[str, int], costs) -> float:
    stride, total = 1, 0.0
    for d in order:
        total += costs[d][stride]
        stride *= sizes[d]
    return total


def brute_force_orders(sizes: dict[str, int], costs) -> tuple[float, tuple[str, ...]]:
    """Every order (tests): (cost, order) of the cheapest."""
    return min((order_cost(p, sizes, costs), p) for p in itertools.permutations(sizes))


def place(plan: Plan, model, sc, cluster, profile, xdit_pred=None, k: int = K_BEST,
          time_limit: float = TIME_LIMIT) -> Placement:
    """The best layout order for `plan` (module doc). xdit_pred: predict() of the plan
    with xDiT's order, if the caller has it."""
    if plan.segments:
        return place_schedule(plan, model, sc, cluster, profile, xdit_pred)
    xdit = layout_for(plan.base(), XDIT_ORDER)
    xp = xdit_pred or predict(plan, model, sc, cluster, profile, layout=xdit, solvers=SOLVERS)
    sizes = dimension_sizes(plan.base())
    if len(sizes) <= 1:
        return Placement(plan, xdit.order, xp.latency_s, xdit.order, xp.latency_s, xp, None, 0)
    if len(sizes) == 2:
        # two orders: predicting the other one is exact and cheaper than the program
        orders, info = [(tuple(reversed(xdit.order)), 0.0)], None
        return _best_of(plan, model, sc, cluster, profile, xdit, xp, orders, info)
    costs = stride_costs(plan.base(), model, sc, cluster, profile)
    if all(max(c.values()) - min(c.values()) <= 1e-12 * max(abs(v) for v in c.values()) for c in costs.values()):
        # every dimension costs the same at every stride (e.g. one NVSwitch node): every
        # order is as good as xDiT's
        return Placement(plan, xdit.order, xp.latency_s, xdit.order, xp.latency_s, xp, None, 0)
    orders, info = solve_orders(sizes, costs, k, time_limit)
    return _best_of(plan, model, sc, cluster, profile, xdit, xp, orders, info)


def _best_of(plan, model, sc, cluster, profile, xdit, xp, orders, info) -> Placement:
    """predict() each candidate order; keep the fastest (xDiT's order included)."""
    best = (xp.latency_s, xdit.order, xp)
    tried = 0
    for order, _ in orders:
        if order == xdit.order:
            continue
        p = predict(plan, model, sc, cluster, profile, layout=layout_for(plan, order), solvers=SOLVERS)
        tried += 1
        if p.latency_s < best[0] * (1 - 1e-12):
            best = (p.latency_s, order, p)
    return Placement(plan, best[1], best[0], xdit.order, xp.latency_s, best[2], info, tried)


def place_schedule(plan: Plan, model, sc, cluster, profile, xdit_pred=None) -> Placement:
    """The best single order for every run of a schedule plan (module doc): every order
    of the runs' dimensions, predicted once per distinct way it lays out the runs; with
    more than MAX_SCHEDULE_ORDERS orders, each run's own placement (place()) instead."""
    runs = [p for p, _ in schedule_runs(plan, sc.steps)]
    xdit = dimension_names(runs)       # xDiT's order of every dimension the runs have
    xp = xdit_pred or predict(plan, model, sc, cluster, profile, layout=ordered_layout(plan, xdit),
                              solvers=SOLVERS)
    if all(len(dimension_sizes(p)) <= 1 for p in runs):
        # no run has two dimensions: every order lays out every run the same
        return Placement(plan, xdit, xp.latency_s, xdit, xp.latency_s, xp, None, 0)
    if math.factorial(len(xdit)) <= MAX_SCHEDULE_ORDERS:
        orders = list(itertools.permutations(xdit))
    else:
        own = [place(p, model, sc, cluster, profile).order for p in set(runs) if len(dimension_sizes(p)) > 1]
        orders = [o + tuple(d for d in xdit if d not in o) for o in own]

    def runs_layout(order):
        return tuple(tuple(d for d in order if d in dimension_sizes(p)) for p in runs)
    best, seen, tried = (xp.latency_s, xdit, xp), {runs_layout(xdit)}, 0
    for order in orders:
        key = runs_layout(order)
        if key in seen:
            continue
        seen.add(key)
        p = predict(plan, model, sc, cluster, profile, layout=ordered_layout(plan, tuple(order)), solvers=SOLVERS)
        tried += 1
        if p.latency_s < best[0] * (1 - 1e-12):
            best = (p.latency_s, tuple(order), p)
    return Placement(plan, best[1], best[0], xdit, xp.latency_s, best[2], None, tried)
