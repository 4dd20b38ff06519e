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
    if n == 1:
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


def search(model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile, exact_only: bool = False,
           include_baselines: bool = False, approx_budget: int = DEFAULT_APPROX_STEPS) -> SearchResult:
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
    rec = next((p for p in preds if p.fits and _recommendable(p.plan) and p.approx_steps <= approx_budget), None)
    return SearchResult(preds, rec, serial_latency(model, sc, cluster, profile), considered, illegal,
                        time.perf_counter() - t0)


def _recommendable(plan_str: str) -> bool:
    return all(STRATEGIES[item.split("=")[0]].recommend
               for item in plan_str.split() if "=" in item and item.split("=")[0] in STRATEGIES)
