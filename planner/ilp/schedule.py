"""Which strategy runs each denoising step: a switching schedule as an integer program.

Generalises Hybridiff's switch (CFG parallel, then a two-stage pipeline for a window of
steps, then CFG parallel again) and the warm-up steps of PipeFusion, DistriFusion and
AsyncDiff: every strategy that is switched in pays its own synchronous warm-up again.

A *mode* is one candidate plan on the same GPUs. Running it for n consecutive steps (a
*run*) costs f(n), its own denoising loop over n steps (warm-up, pipeline fill and drain
included; planner/ilp/schedule_modes.py gets f from the cost engine). The increments
f(k) - f(k-1) are a prefix of K values followed by a cycle of P values repeating for ever
(P = 1 for most plans; AsyncDiff with stride S finishes S steps per round, P = S). So a
run walks through *phases*: prefix phases 0..K-1, then cycle phases K..K+P-1.

Integer program (steps t = 1..T, modes m, phases p of m):
    x[t,m,p] in {0,1}    step t runs mode m in phase p
    sum_{m,p} x[t,m,p] = 1                               one mode per step
    x[t,m,p] <= x[t-1,m,p-1]            (p >= 1, p != K)  phases advance one per step
    x[t,m,K] <= x[t-1,m,K-1] + x[t-1,m,K+P-1]             (K >= 1) cycle entry / wrap
    x[t,m,0] <= 1 - X[t-1,m] (+ x[t-1,m,P-1] when K = 0)   phase 0 starts a new run
    X[t,m] = sum_p x[t,m,p];  e[t,m] >= X[t-1,m] - X[t,m];  v[t,m] >= X[t,m] - X[t-1,m]
    sum of x over approximate phases <= B                  the --approx-steps budget
    sum of switch arcs <= MAX_SWITCHES                      at most one window (in and out)
    s[t,a,b] = 0 unless b may follow a (Mode.after); no run of such a b at t = 1
    approximate phases only at steps inside the allowed window (others not created)
    minimise  sum f-increment(m,p) x[t,m,p] + sum out(m) e[t,m] + sum in(m) v[t,m]
A switch costs out(leaving mode) + in(entering mode) (re-sharding the latent). Every run
starts in phase 0, so the objective equals the sum of the runs' f(n) plus the switches:
exactly what predict() computes for the schedule plan. The model is a shortest path
through a layered graph (totally unimodular) plus one budget row, so CBC solves it at
or near the root.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pulp

from .solver import SolveError, SolveInfo, is_one, new_var, solve

TIME_LIMIT = 5.0
# At most this many switches per schedule: Hybridiff's shape (into a window and out of it).
# Every switch is a re-shard and a code path to get right in production; schedules that
# hop between strategies every few steps for a fraction of a percent are not worth it.
MAX_SWITCHES = 2


@dataclass(frozen=True)
class Mode:
    """One candidate plan as the schedule sees it (see the module doc)."""

    name: str
    prefix: tuple[float, ...]            # cost of step k of a run, k = 1..K
    cycle: tuple[float, ...]             # then these repeat (at least one value)
    approx_prefix: tuple[bool, ...] = ()  # which of those steps are approximate
    approx_cycle: tuple[bool, ...] = ()
    out_s: float = 0.0                   # leaving this mode after a step (re-shard)
    in_s: float = 0.0                    # entering it
    # a run of this mode may only start right after a run of one of these modes (by
    # name), never at step 1: Hybridiff's window continues its CFG-parallel phase (it
    # needs the last unconditional prediction and the handover of the stage boundary)
    after: tuple[str, ...] = ()
    data: object = field(default=None, compare=False)   # caller's payload (plan, ...)

    def __post_init__(self):
        if not self.cycle:
            raise ValueError(f"mode {self.name}: the cycle needs at least one step cost")
        object.__setattr__(self, "approx_prefix", tuple(self.approx_prefix) or (False,) * len(self.prefix))
        object.__setattr__(self, "approx_cycle", tuple(self.approx_cycle) or (False,) * len(self.cycle))

    @property
    def phases(self) -> int:
        return len(self.prefix) + len(self.cycle)

    def phase(self, k: int) -> int:
        """Phase of the k-th step of a run (k = 1, 2, ...)."""
        K, P = len(self.prefix), len(self.cycle)
        return k - 1 if k <= K else K + (k - 1 - K) % P

    def step_cost(self, p: int) -> float:
        K = len(self.prefix)
        return self.prefix[p] if p < K else self.cycle[p - K]

    def step_approx(self, p: int) -> bool:
        K = len(self.prefix)
        return self.approx_prefix[p] if p < K else self.approx_cycle[p - K]

    def run_cost(self, n: int) -> float:
        return sum(self.step_cost(self.phase(k)) for k in range(1, n + 1))

    def run_approx(self, n: int) -> int:
        return sum(self.step_approx(self.phase(k)) for k in range(1, n + 1))


def may_follow(modes: list[Mode], a: int | None, b: int) -> bool:
    """Can a run of mode b start after a run of mode a (a = None: at step 1)?"""
    after = modes[b].after
    return not after or (a is not None and modes[a].name in after)


@dataclass(frozen=True)
class Schedule:
    runs: tuple[tuple[int, int, int], ...]   # (mode index, first step, last step), 1-based
    objective: float                          # seconds of the denoising loop
    approx_steps: int
    info: SolveInfo | None = None

    def modes_used(self) -> set[int]:
        return {m for m, _, _ in self.runs}


def evaluate(modes: list[Mode], runs) -> tuple[float, int]:
    """(seconds, approximate steps) of a sequence of runs: what the program minimises."""
    total, approx = 0.0, 0
    for i, (m, a, b) in enumerate(runs):
        total += modes[m].run_cost(b - a + 1)
        approx += modes[m].run_approx(b - a + 1)
        if i:
            total += modes[runs[i - 1][0]].out_s + modes[m].in_s
    return total, approx


def _window_ok(mode: Mode, first: int, n: int, window) -> bool:
    lo, hi = window
    return all(lo <= first + k - 1 <= hi for k in range(1, n + 1) if mode.step_approx(mode.phase(k)))


def _tie(modes: list[Mode], steps: int) -> float:
    """Tie-break cost per approximate step and step index: schedules of equal time put
    their approximate steps as early as the window allows (Hybridiff opens its window
    early, by tau_cap). Far below any real difference: 1e-6 of a step over the run."""
    return 1e-6 * max((max(m.prefix + m.cycle) for m in modes), default=0.0) / max(steps, 1) ** 2


def dp_schedule(modes: list[Mode], steps: int, budget: int, window=None, max_switches: int = MAX_SWITCHES):
    """The same optimum by dynamic programming over (step, mode, phase, approximate
    steps used, switches made): the warm start of the integer program. Returns the runs
    or None."""
    lo, hi = window or (1, steps)
    inf = float("inf")
    eps = _tie(modes, steps)
    best: dict = {}
    for m, mode in enumerate(modes):
        a = int(mode.step_approx(0))
        if a and not lo <= 1 <= hi or a > budget or not may_follow(modes, None, m):
            continue
        best[m, 0, a, 0] = (mode.step_cost(0) + eps * a, None)
    layers = [best]
    for t in range(2, steps + 1):
        cur: dict = {}
        prev = layers[-1]
        leave = {}          # cheapest way to leave mode m after step t-1, per budget and switches used
        for (m, p, u, s), (c, _) in prev.items():
            key = (m, u, s)
            if s < max_switches and c + modes[m].out_s < leave.get(key, (inf,))[0]:
                leave[key] = (c + modes[m].out_s, (m, p, u, s))
        for (m, p, u, s), (c, _) in prev.items():       # stay in the mode
            mode = modes[m]
            q = p + 1 if p + 1 < mode.phases else len(mode.prefix)
            a = int(mode.step_approx(q))
            if (a and not lo <= t <= hi) or u + a > budget:
                continue
            cand = c + mode.step_cost(q) + eps * a * t
            if cand < cur.get((m, q, u + a, s), (inf,))[0]:
                cur[m, q, u + a, s] = (cand, (m, p, u, s))
        for (m0, u, s), (c, src) in leave.items():       # switch to another mode, phase 0
            for m, mode in enumerate(modes):
                a = int(mode.step_approx(0))
                if m == m0 or (a and not lo <= t <= hi) or u + a > budget or not may_follow(modes, m0, m):
                    continue
                cand = c + mode.in_s + mode.step_cost(0) + eps * a * t
                if cand < cur.get((m, 0, u + a, s + 1), (inf,))[0]:
                    cur[m, 0, u + a, s + 1] = (cand, src)
        layers.append(cur)
    if not layers[-1]:
        return None
    state = min(layers[-1], key=lambda k: layers[-1][k][0])
    chosen = []
    for t in range(steps, 0, -1):
        chosen.append(state[0])
        state = layers[t - 1][state][1]
    return _runs(chosen[::-1])


def _runs(chosen: list[int]) -> list[tuple[int, int, int]]:
    runs: list[tuple[int, int, int]] = []
    for t, m in enumerate(chosen, 1):
        if runs and runs[-1][0] == m:
            runs[-1] = (m, runs[-1][1], t)
        else:
            runs.append((m, t, t))
    return runs


def solve_schedule(modes: list[Mode], steps: int, budget: int, window: tuple[int, int] | None = None,
                   time_limit: float = TIME_LIMIT, warm: bool = True, max_switches: int = MAX_SWITCHES) -> Schedule:
    """The cheapest schedule (see the module doc). window = (first, last) steps where
    approximate phases may run (default: all steps). warm: start CBC from the DP's
    schedule (dp_schedule), so a time limit still returns a good schedule."""
    lo, hi = window or (1, steps)
    prob = pulp.LpProblem("switching_schedule", pulp.LpMinimize)
    switches = []
    x: dict[tuple[int, int, int], pulp.LpVariable] = {}
    for t in range(1, steps + 1):
        for m, mode in enumerate(modes):
            for p in range(mode.phases if t > 1 else 1):
                if mode.step_approx(p) and not lo <= t <= hi or t == 1 and not may_follow(modes, None, m):
                    continue
                x[t, m, p] = new_var(prob, f"x_{t}_{m}_{p}", cat="Binary")

    def get(t, m, p):
        return x.get((t, m, p), 0)

    eps = _tie(modes, steps)
    objective = [(modes[m].step_cost(p) + eps * t * modes[m].step_approx(p)) * var for (t, m, p), var in x.items()]
    prob += pulp.lpSum(get(1, m, 0) for m in range(len(modes))) == 1
    for t in range(2, steps + 1):
        # switch arcs: leave mode a after step t-1, enter mode b in phase 0 at step t
        sw = {(a, b): new_var(prob, f"s_{t}_{a}_{b}", lowBound=0, upBound=None if may_follow(modes, a, b) else 0)
              for a in range(len(modes)) for b in range(len(modes)) if a != b}
        objective += [(modes[a].out_s + modes[b].in_s) * v for (a, b), v in sw.items()]
        switches += sw.values()
        for m, mode in enumerate(modes):
            q_n, k = mode.phases, len(mode.prefix)
            succ = [p + 1 if p + 1 < q_n else k for p in range(q_n)]
            stay = {}          # phase p at t-1 -> flow continuing in mode m into succ[p] at t
            for q in range(q_n):
                preds = [p for p in range(q_n) if succ[p] == q]
                if (t, m, q) not in x:
                    continue                      # outside the window: nothing continues into it
                if len(preds) == 1 and q != 0:    # a chain: the node's flow is the arc's
                    stay[preds[0]] = x[t, m, q]
                    continue
                for p in preds:                   # cycle head (two predecessors) or wrap into 0
                    stay[p] = new_var(prob, f"c_{t}_{m}_{p}", lowBound=0)
                entering = pulp.lpSum(sw[a, m] for a in range(len(modes)) if a != m) if q == 0 else 0
                prob += x[t, m, q] == pulp.lpSum(stay[p] for p in preds) + entering
            if (t, m, 0) not in x:                # cannot start here: no flow switches in
                for a in range(len(modes)):
                    if a != m:
                        sw[a, m].upBound = 0
            for p, arc in stay.items():
                prob += arc <= get(t - 1, m, p)
            # flow conservation: what was in mode m at t-1 and does not stay, switches out
            prob += (pulp.lpSum(get(t - 1, m, p) for p in range(q_n)) - pulp.lpSum(stay.values())
                     == pulp.lpSum(sw[m, b] for b in range(len(modes)) if b != m))
    approx_vars = [var for (t, m, p), var in x.items() if modes[m].step_approx(p)]
    if approx_vars:
        prob += pulp.lpSum(approx_vars) <= budget
    if switches:
        prob += pulp.lpSum(switches) <= max_switches
    prob += pulp.lpSum(objective)
    start = dp_schedule(modes, steps, budget, (lo, hi), max_switches) if warm else None
    if start is not None:
        _set_start(x, modes, start)
    try:
        info = solve(prob, time_limit, "switching schedule", warm_start=start is not None)
    except SolveError:
        if start is None:
            raise
        # CBC had not even loaded the start when its time ran out (a loaded machine), or
        # reported a stop at its limit as infeasible (seen with tight limits): the DP's
        # schedule is feasible and exact, so return it, with no proof from CBC
        t0, a0 = evaluate(modes, start)
        return Schedule(tuple(start), t0, a0, SolveInfo("no solution in time", t0, float("nan"),
                                                        float("nan"), time_limit, "cbc"))
    chosen = [next(m for m in range(len(modes)) for p in range(modes[m].phases)
                   if (t, m, p) in x and is_one(x[t, m, p])) for t in range(1, steps + 1)]
    runs = _runs(chosen)
    total, approx = evaluate(modes, runs)
    if start is not None:
        # CBC treats objective differences below its tolerance (~1e-9 relative) as ties,
        # so among equally fast schedules it may return any; the DP's tie-break (earliest
        # approximate steps) is the deterministic choice between equal optima
        t0, a0 = evaluate(modes, start)
        if t0 <= total * (1 + 1e-12) and a0 <= budget:
            runs, total, approx = start, t0, a0
    return Schedule(tuple(runs), total, approx, info)


def _set_start(x, modes, runs):
    """Initial values of the step variables for the runs (the other variables follow)."""
    on = set()
    for m, a, b in runs:
        for k in range(1, b - a + 2):
            on.add((a + k - 1, m, modes[m].phase(k)))
    for key, var in x.items():
        var.setInitialValue(1 if key in on else 0)


def brute_force(modes: list[Mode], steps: int, budget: int, window=None,
                max_switches: int = MAX_SWITCHES) -> tuple[float, tuple] | None:
    """Every mode sequence (tests, small instances): (seconds, runs) of the best."""
    lo, hi = window or (1, steps)
    best = None
    for seq in itertools.product(range(len(modes)), repeat=steps):
        runs = _runs(list(seq))
        if len(runs) - 1 > max_switches or not all(_window_ok(modes[m], a, b - a + 1, (lo, hi))
                                                    for m, a, b in runs):
            continue
        if not all(may_follow(modes, runs[i - 1][0] if i else None, m) for i, (m, _, _) in enumerate(runs)):
            continue
        total, approx = evaluate(modes, runs)
        if approx <= budget and (best is None or total < best[0] - 1e-12):
            best = (total, tuple(runs))
    return best
