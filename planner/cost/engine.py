"""Per-block costs of one rank and the default (layer-wise) denoising loop.

`Engine` gathers what every loop needs for one plan: the rank's local share of a
denoiser call (samples and shard, combined from the plan's strategies), per-block
compute and communication times, collective times on the plan's rank groups, and the
stage cuts and per-stage GPUs of pipelines. Strategies that reorder work over blocks or
steps (Strategy.owns_loop: pipefusion, asyncdiff, paradigms, parastep, hybridiff) build
their own loop from these pieces; every other plan runs the blocks in order, which
`layerwise` times here.

How stages are cut and tokens split over unequal GPUs is the engine's `Solvers`: exact
dynamic programs by default; the search injects planner/ilp's integer programs.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..cluster import Cluster
from ..hardware import GpuSpec, Profile
from ..layout import Layout
from ..plan import Plan
from ..spec import ModelSpec, Scenario
from ..strategies import STRATEGIES, loop_strategy, samples_per_rank, warmup_steps
from ..strategies.base import AFTER_STEP, BLOCKING, IN_ATTENTION, IN_STEP, Comm, Local, Shard
from ..timeline import COMM, COMPUTE, HIDDEN, ISSUE, LoopTime, Timeline, run_pass, summarise
from ..timeline import HOST as HOST_LANE
from . import compute, hetero, measured, memory, partition
from .comm import collective_time


@dataclass(frozen=True)
class Solvers:
    """How the engine cuts pipeline stages and splits tokens over unequal GPUs:
    partition(costs, parts, mem=, caps=) -> partition.Partition and
    split_rows(a, b, total) -> hetero.RowSplit. Both defaults are exact (a DP and a greedy
    rule); planner/ilp.SOLVERS states the same choices as integer programs."""

    partition: Callable = partition.exact_partition
    split_rows: Callable = hetero.greedy_rows


EXACT = Solvers()



def overlapped(compute_s, comm_s, eta: float):
    """Time of `comm_s` running alongside `compute_s`: perfect overlap at eta=1, serial at 0.
    Overlap is imperfect because NCCL kernels take SMs from the compute they hide under
    (DistriFusion measured 1.77 s against an ideal 1.48 s, methods.md)."""
    return np.maximum(compute_s, comm_s) + (1.0 - eta) * np.minimum(compute_s, comm_s)


@dataclass
class BlockCosts:
    """Seconds per block on one rank, for one denoiser call. The GPU stream runs compute,
    blocking collectives and Ring's exposed passes; the host stream issues every block's
    kernels (host) ahead of it (compute.two_stream)."""

    compute: np.ndarray
    blocking: np.ndarray      # collectives nothing can run beside (all-to-all, all-reduce)
    attn_extra: np.ndarray    # what Ring's K/V passes add beyond the attention they overlap
    async_comm: np.ndarray    # asynchronous collectives hidden under the whole step
    sent: np.ndarray          # bytes this rank sends per block
    exposed: dict = field(default_factory=dict)     # dim -> blocking + attn_extra per block
    asynchronous: dict = field(default_factory=dict)  # dim -> async_comm per block
    host: np.ndarray | None = None   # the host's time to issue each block's kernels

    def gpu_time(self, sel=slice(None)) -> float:
        return float(self.compute[sel].sum() + self.blocking[sel].sum() + self.attn_extra[sel].sum())

    def issued(self, sel=slice(None), extra_host: float = 0.0) -> float:
        """The blocks `sel` on the GPU stream as the host issues them (two_stream), plus
        `extra_host` of host work after them (the scheduler step)."""
        gpu = self.compute[sel] + self.blocking[sel] + self.attn_extra[sel]
        host = self.host[sel] if self.host is not None else np.zeros_like(gpu)
        if extra_host:
            gpu, host = np.append(gpu, 0.0), np.append(host, extra_host)
        return compute.two_stream(host, gpu)

    def host_exposed(self, sel=slice(None), extra_host: float = 0.0) -> float:
        """What the host adds to the pass beyond the GPU stream (host-bound time)."""
        return self.issued(sel, extra_host) - self.gpu_time(sel)

    def exposed_dims(self, sel=slice(None), eta: float = 1.0, sync: bool = False) -> dict[str, float]:
        """The communication a pass exposes over `sel`, by parallel dimension: the blocking
        and ring parts of each dimension, and the exposed part of the asynchronous
        collectives (hidden under the issued pass) in proportion to each dimension's
        seconds of them."""
        out = {d: float(a[sel].sum()) for d, a in self.exposed.items()}
        k = float(self.async_comm[sel].sum())
        if k > 0:
            base = self.issued(sel)
            shown = k if sync else float(overlapped(base, k, eta)) - base
            for d, a in self.asynchronous.items():
                out[d] = out.get(d, 0.0) + shown * float(a[sel].sum()) / k
        return {d: v for d, v in out.items() if v > 0}

    def pass_time(self, sel=slice(None), eta: float = 1.0, sync: bool = False) -> float:
        """One pass over the blocks `sel`, in order. sync=True: asynchronous collectives
        wait like blocking ones (the synchronous warm-up of stale-activation methods)."""
        base = self.issued(sel)
        k = float(self.async_comm[sel].sum())
        return base + k if sync else float(overlapped(base, k, eta))

    def exposed_comm(self, sel=slice(None), eta: float = 1.0, sync: bool = False) -> float:
        return self.pass_time(sel, eta, sync) - float(self.compute[sel].sum()) - self.host_exposed(sel)


def moving_pairs(cluster: Cluster, pairs) -> tuple[tuple[int, int], ...]:
    """The (src, dst) pairs with src != dst (a rank sending to itself moves nothing), found
    once per tuple of pairs (kept by identity on the cluster, like the load patterns: a
    Layout's pairs live as long as the search)."""
    seen = cluster._cache.setdefault("moving_pairs", {})
    hit = seen.get(id(pairs))
    if hit is not None and hit[0] is pairs:
        return hit[1]
    live = tuple((a, b) for a, b in pairs if a != b)
    if isinstance(pairs, tuple):
        seen[id(pairs)] = (pairs, live)
    return live


class Engine:
    def __init__(self, model: ModelSpec, sc: Scenario, cluster: Cluster, profile: Profile,
                 plan: Plan, layout: Layout, solvers: Solvers = EXACT):
        self.model, self.sc, self.cluster, self.profile = model, sc, cluster, profile
        self.plan, self.layout, self.solvers = plan, layout, solvers
        self.eta = profile.calibration.overlap_eff
        self.table = compute.op_table(model)
        shard = Shard()
        for key, d in plan.degrees:
            shard = shard * STRATEGIES[key].shard(d, plan)
        self.local = Local(batch=samples_per_rank(plan, sc.branches), shard=shard, elem=sc.elem_bytes,
                           tp=shard.features, sp=shard.seq, latent=model.latent_shape[1:],
                           frame_split=model.split.seq == "frame_rows")
        self.gpu: GpuSpec = cluster.slowest(plan.gpus, sc.dtype)   # the slowest rank sets the pace
        self._costs: dict = {}
        self._comm: dict = {}       # comm_time memo (layout-dependent: copies with another layout reset it)
        # on mixed GPUs a layer-wise sequence/patch split gives each rank rows in
        # proportion to its speed instead of running all at the slowest pace (hetero.py)
        self.split = None if cluster.uniform else hetero.token_split(self)
        self.measured = measured.match(model, profile, self.gpu, sc)

    def for_gpu(self, gpu: GpuSpec) -> "Engine":
        """This engine with every rank on `gpu` (a pipeline stage's costs on its own GPU).
        Shares nothing mutable with self."""
        e = copy.copy(self)
        e.gpu, e.split, e._costs = gpu, None, {}
        e.measured = measured.match(self.model, self.profile, gpu, self.sc)
        return e

    # ---------------------------------------------------------------- pipeline stages
    def stage_engines(self, key: str) -> list["Engine"]:
        """One engine per pipeline stage of dimension `key`, on the slowest GPU at that
        stage's position in its groups (this engine for all stages on uniform GPUs)."""
        groups = self.layout.groups(key)
        gpus = self.cluster.gpus
        size = len(groups[0])
        if self.cluster.uniform:
            return [self] * size
        per_stage = [min((gpus[g[s]] for g in groups), key=lambda x: x.peak(self.sc.dtype)) for s in range(size)]
        if len({g.id for g in per_stage}) <= 1:
            return [self] * size
        made = {}
        for g in per_stage:
            if g.id not in made:
                made[g.id] = self.for_gpu(g)
        return [made[g.id] for g in per_stage]

    def stage_cuts(self, rows: list, key: str) -> partition.Partition:
        """Stage cuts for the pipeline dimension `key` (Strategy.stage_cuts). rows: each
        stage's per-block time on its own GPU (stage_engines). A strategy whose stages hold
        only their blocks' weights (Strategy.stage_weights: PipeFusion) gets per-stage
        memory caps; one that keeps the whole model on every device (AsyncDiff) only
        balances time. The cuts depend on block costs and memory, not on the step count:
        memoised in the cost cache, which copies made for other step counts share."""
        parts = len(rows)
        memo = ("stage_cuts", key, parts)
        if memo not in self._costs:
            uniform = all(r is rows[0] or np.array_equal(r, rows[0]) for r in rows)
            costs = rows[0] if uniform else np.vstack(rows)
            mem = caps = None
            if STRATEGIES[key].stage_weights:
                mem, caps = memory.stage_caps(self, key, parts)
            self._costs[memo] = self.solvers.partition(costs, parts, mem=mem, caps=caps)
        return self._costs[memo]

    def balanced_cuts(self, costs, parts: int) -> list[slice]:
        """Contiguous cuts minimising the slowest part, no memory caps (partition.py)."""
        return partition.balanced_cuts(costs, parts)

    # ---------------------------------------------------------------- communication
    def comm_time(self, c: Comm) -> float:
        # Hook (speed, planner/ilp bench): memoised per (kind, dim, bytes). The same block
        # type repeats its collectives in every block, and on 1,024 GPUs building and
        # hashing the rank groups of each call dominated the search.
        key = (c.kind, c.dim, c.nbytes)
        t = self._comm.get(key)
        if t is None:
            if c.kind == "p2p":   # within a group: every rank sends to its ring neighbour at once
                t = self.p2p_time(self.layout.ring_pairs(c.dim), c.nbytes)
            else:
                t = collective_time(self.cluster, c.kind, self.layout.groups(c.dim), c.nbytes, self.profile)
            self._comm[key] = t
        return c.count * t

    def copy_time(self, nbytes: float) -> float:
        """A memory-bound kernel moving `nbytes` (read + written) on this engine's GPU."""
        curve = self.profile.curve(self.gpu, "mem")
        return float(compute.curve_time(curve, np.array([nbytes]), self.gpu.memory_bw)[0])

    def collective(self, kind: str, dim: str, nbytes: float) -> float:
        """One collective over every group of dimension `dim` at once."""
        key = ("collective", kind, dim, nbytes)   # memoised as comm_time
        t = self._comm.get(key)
        if t is None:
            t = self._comm[key] = collective_time(self.cluster, kind, self.layout.groups(dim), nbytes,
                                                  self.profile)
        return t

    def p2p_time(self, pairs, nbytes: float) -> float:
        """Point-to-point sends over explicit (src, dst) pairs, all at once (memoised like
        comm_time, by the pairs' identity: callers build each set of pairs once)."""
        key = ("p2p", id(pairs), nbytes)
        hit = self._comm.get(key)
        if hit is None or hit[0] is not pairs:
            live = moving_pairs(self.cluster, pairs)
            t = collective_time(self.cluster, "p2p", live, nbytes, self.profile) if live else 0.0
            hit = self._comm[key] = (pairs, t)
        return hit[1]

    def step_comms(self, local: Local | None = None) -> list[Comm]:
        local = local or self.local
        out = []
        for key, d in self.plan.degrees:
            out += [c for c in STRATEGIES[key].step_comm(d, self.plan, self.model, local) if c.overlap == AFTER_STEP]
        return out

    def after_step(self, local: Local | None = None) -> tuple[float, float]:
        """Seconds and bytes of the once-per-step collectives (CFG gather)."""
        cs = self.step_comms(local)
        return sum(self.comm_time(c) for c in cs), sum(c.nbytes * c.count for c in cs)

    def after_step_dims(self, local: Local | None = None) -> dict[str, float]:
        """after_step's seconds by parallel dimension."""
        out: dict[str, float] = {}
        for c in self.step_comms(local):
            out[c.dim] = out.get(c.dim, 0.0) + self.comm_time(c)
        return out

    def step_overhead(self) -> float:
        """Per denoising step, outside the network (Calibration.step_*)."""
        c = self.profile.calibration
        return c.step_compiled_s if self.sc.compiled else c.step_eager_s

    # ---------------------------------------------------------------- per-block costs
    def block_costs(self, shard: Shard | None = None, batch: float | None = None,
                    keys: tuple[str, ...] | None = None) -> BlockCosts:
        """Costs of every block for a local shape (default: the plan's), with the
        per-block communication of the strategies `keys` (default: all of the plan's)."""
        local = self.local
        if shard is not None or batch is not None:
            local = Local(batch=batch if batch is not None else local.batch, shard=shard or local.shard,
                          elem=local.elem, tp=local.tp, sp=(shard or local.shard).seq, latent=local.latent,
                          frame_split=local.frame_split)
        key = (local, keys)
        if key in self._costs:
            return self._costs[key]
        t = self.table
        eager = self.model.eager
        compiled = self.sc.compiled
        times = compute.op_times(t, local.shard, local.tp, local.batch, local.elem, self.sc.dtype,
                                 self.gpu, self.profile, compiled, eager.mem_factor)
        comp = compute.per_block(t, times)
        kernel_s = self.profile.launch_s(compiled)
        host = compute.block_host(t, 1.0 if compiled else eager.kernels_per_op, kernel_s)
        attn = compute.per_block(t, np.where(t.self_attn, times, 0.0))
        if self.measured is not None:    # blocks the profile measured (`profile --model`, measured.py)
            r = measured.block_ratios(self.model, self.measured, local.shard, local.batch, local.elem,
                                      self.sc.dtype, self.gpu, self.profile)
            comp, attn = comp * r, attn * r
        if self.plan.gpus > 1:     # ranks sharing one host's cores (Profile.concurrent_slowdown)
            comp, attn = comp * self.profile.concurrent_slowdown, attn * self.profile.concurrent_slowdown
        if self.split is not None:   # hook: unequal token shares on mixed GPUs (planner/ilp/hetero.py)
            comp, attn = self.split.block_compute(self, local)
        n = len(self.model.blocks)
        blocking, ring, async_c, sent = (np.zeros(n) for _ in range(4))
        exposed: dict[str, np.ndarray] = {}
        asynchronous: dict[str, np.ndarray] = {}
        strategies = [(k, d) for k, d in self.plan.degrees if keys is None or k in keys]
        # blocks that are the same layer (compute.block_classes) issue the same collectives
        # at the same cost: each class's is worked out once, then added to its blocks
        classes = compute.block_classes(self.model)
        per_class: dict[int, list] = {}
        for i, block in enumerate(self.model.blocks):
            adds = per_class.get(classes[i])
            if adds is None:
                adds = per_class[classes[i]] = []
                for k, d in strategies:
                    for c in STRATEGIES[k].layer_comm(d, self.plan, block, local):
                        secs = self.comm_time(c)
                        # layout copies / merges: memory-bound, on the compute stream
                        copy_s = c.count * self.copy_time(c.copy_bytes) if c.copy_bytes else None
                        if c.overlap == IN_ATTENTION:
                            # c.count passes, each hiding under one of (count+1) attention chunks
                            chunk = attn[i] / (c.count + 1)
                            secs = c.count * (overlapped(chunk, secs / c.count, self.eta) - chunk)
                        adds.append((c.overlap, c.dim, secs, c.nbytes * c.count,
                                     c.count * c.kernels * kernel_s, copy_s))   # host: the collective and its copies
            for overlap, dim, secs, nbytes, host_s, copy_s in adds:
                sent[i] += nbytes
                host[i] += host_s
                if copy_s is not None:
                    blocking[i] += copy_s
                    exposed.setdefault(dim, np.zeros(n))[i] += copy_s
                if overlap == BLOCKING:
                    blocking[i] += secs
                    exposed.setdefault(dim, np.zeros(n))[i] += secs
                elif overlap == IN_ATTENTION:
                    ring[i] += secs
                    exposed.setdefault(dim, np.zeros(n))[i] += secs
                elif overlap == IN_STEP:
                    async_c[i] += secs
                    asynchronous.setdefault(dim, np.zeros(n))[i] += secs
        costs = BlockCosts(comp, blocking, ring, async_c, sent, exposed, asynchronous, host)
        self._costs[key] = costs
        return costs

    # ---------------------------------------------------------------- default schedule
    def warmup_steps(self) -> int:
        return min(self.sc.steps, warmup_steps(self.plan))

    def layerwise(self, detail: bool) -> LoopTime:
        """Every rank runs all blocks in order on its share; warm-up steps (if a strategy
        has them) wait for their asynchronous collectives. Every rank does the same work,
        so one timeline row stands for all of them: unit 0 is a warm-up step (if any),
        unit 1 a steady one."""
        sc, costs = self.sc, self.block_costs()
        warm = self.warmup_steps()
        n = self.plan.gpus
        tl = Timeline(1, [f"each of {n} ranks" if n > 1 else "rank 0"], record=detail)
        units = []
        for step, count, sync in ((0, warm, True), (1, sc.steps - warm, False)):
            if count > 0:
                self._layerwise_step(tl, costs, step, sync, detail)
                units.append((step, count))
        _, gather_b = self.after_step()
        return summarise(tl, units, warmup={0}, comm_bytes_per_step=float(costs.sent.sum()) + gather_b)

    def _layerwise_step(self, tl: Timeline, costs: BlockCosts, step: int, sync: bool, detail: bool) -> None:
        """One step on the timeline: the host issuing the blocks' kernels and the scheduler,
        the blocks (one task, or block by block), the exposed communication of each
        dimension, the wait for the host where it is slower, the once-per-step collectives."""
        other = self.step_overhead()
        if detail:
            start = tl.free_at(0)
            tl.add(0, HOST_LANE, float(costs.host.sum()) + other, after=start, label="issue kernels", step=step,
                   part=ISSUE)
            for i, b in enumerate(self.model.blocks):
                tl.add(0, COMPUTE, costs.compute[i], label=b.name, step=step)
                for d, a in costs.exposed.items():
                    tl.block(0, a[i], label=f"{b.name} {d}", step=step, dim=d)
                if costs.async_comm[i] > 0:
                    tl.add(0, COMM, costs.async_comm[i], after=tl.free_at(0), label=f"{b.name} async", step=step,
                           part=HIDDEN, occupy=False)
            hidden_exposed = costs.exposed_dims(eta=self.eta, sync=sync)
            for d in costs.exposed:
                hidden_exposed[d] = hidden_exposed.get(d, 0.0) - float(costs.exposed[d].sum())
            for d, secs in hidden_exposed.items():
                tl.block(0, secs, label=f"{d} async (exposed)", step=step, dim=d)
            waits = costs.host_exposed(extra_host=other)
            if waits > 1e-15:
                tl.host(0, waits, label="waits for the host", step=step)
        else:
            run_pass(tl, 0, costs, slice(None), self.eta, "denoiser", step, sync=sync, extra_host=other)
        for d, secs in self.after_step_dims().items():
            tl.block(0, secs, label="noise-prediction gather", step=step, dim=d)


def denoise(engine: Engine, detail: bool) -> LoopTime:
    """The denoising loop under the plan: its loop strategy's, else layer-wise."""
    s = loop_strategy(engine.plan)
    if s is None:
        return engine.layerwise(detail)
    return s.loop(engine.plan.degree(s.key), engine, detail)
