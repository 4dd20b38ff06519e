"""pipefusion: xDiT's patch-level pipeline (PipeFusion, NeurIPS'25).

The blocks are cut into N stages (cost-balanced, planner/ilp/partition.py) and the image
into M patches. Stage i works on patch j while stage i+1 works on patch j-1; attention
reads a full-image K/V buffer of the stage's layers that holds the previous step's
values, overwritten patch by patch as fresh ones arrive. Only stage-boundary
activations travel (async point-to-point), so traffic does not grow with depth.
The first `warmup` steps (default 1, xDiT's default) run synchronously without stale
K/V. Approximate. Weights are sharded by stage; the K/V buffer covers the stage's layers.
Timing comes from the pipeline simulated on the timeline (`loop`).
"""
import dataclasses

import numpy as np

from ..timeline import COMM, HIDDEN, Timeline, pass_pieces, run_pieces, run_stream, summarise
from .base import WARMUP, Modifier, Shard, Strategy, self_attention_kv_bytes
from .checks import stale_steps

# Elementwise kernels of one scheduler update (diffusers DPMSolverMultistep / FlowMatchEuler
# step: a few scalings, adds and the multistep combination): ASSUMED ~12
SCHEDULER_KERNELS = 12


class PipeFusion(Strategy):
    key = "pipefusion"
    plan_rank = 2
    combines_with = "cfg dp"
    exact = False
    fidelity = "near"
    splits = "layers into stages x the image into patches"
    default_warmup = 1
    layout_rank = 7
    modifiers = (Modifier("patches"), WARMUP)
    collectives = frozenset({"p2p", "broadcast"})
    overlaps_compute = True
    owns_loop = True
    stage_cuts = True
    stage_weights = True

    def patches(self, d, plan) -> int:
        return int(plan.get("patches", d))

    def cap(self, model, sc):
        return len(model.blocks)

    def variants(self, degrees):
        # xDiT sweeps M around N; its App. B finds M = N best: try M = N and M = 2N
        return [{}, {"patches": 2 * degrees[self.key]}]

    def block_calls(self, d, plan):
        return self.patches(d, plan) / d     # 1/N of the blocks, once per patch

    def row_slices(self, d, plan):
        return self.patches(d, plan)

    def leave_comm(self, d):
        return "broadcast"    # the last stage holds the updated latent

    def check(self, d, plan, model, sc):
        errs = []
        if d > len(model.blocks):
            errs.append(f"pipefusion={d} needs at least {d} blocks; {model.id} has {len(model.blocks)}")
        if self.patches(d, plan) < 1:
            errs.append("patches must be >= 1")
        return errs + stale_steps(plan, sc, "pipefusion", self.warmup(plan))

    def shard(self, d, plan):
        m = self.patches(d, plan)
        return Shard(seq=m, q=m)

    def buffer_bytes(self, d, plan, blocks, local):
        # Stale K/V of the whole image for the stage's self-attention layers; with
        # sequence parallelism inside the stage each rank keeps its 1/sp share of it.
        sp = plan.degree("ulysses") * plan.degree("ring")
        return sum(self_attention_kv_bytes(b, local, full=True) for b in blocks) / sp

    # ---- loop: the pipeline over stages x patches, simulated on the timeline
    def loop(self, d, eng, detail):

        sc, plan, local = eng.sc, eng.plan, eng.local
        m = self.patches(d, plan)
        warm = min(self.warmup(plan), sc.steps)
        # each stage's costs on its own GPU (one engine on uniform GPUs), and cuts by cost
        # with per-stage memory caps (Engine.stage_cuts)
        engs = eng.stage_engines(self.key)
        whole_shard = dataclasses.replace(local.shard, seq=local.shard.seq // m, q=local.shard.q // m)
        micros = [e.block_costs() for e in engs]                  # one patch
        wholes = [e.block_costs(shard=whole_shard) for e in engs]
        # a patch's blocks take the GPU's time or, small patches on fast GPUs, the host's
        cuts = eng.stage_cuts([np.maximum(u.compute + u.blocking + u.attn_extra, u.host) for u in micros],
                              self.key).cuts
        patch_t = [micros[s].pass_time(c, eng.eta) for s, c in enumerate(cuts)]

        # point-to-point hops between neighbouring stages, all pipelines at once
        def hop(s: int, nbytes: float) -> float:
            return eng.p2p_time(eng.layout.neighbours(self.key, s), nbytes)

        def boundary(c: slice, seq: int) -> float:
            b = eng.model.blocks[c.stop - 1]
            return (b.tokens * b.hidden + b.skip_elems) / seq * local.batch * local.elem

        def stacked(c: slice, seq: int) -> float:
            """U-shaped DiTs (HunyuanDiT): the stage stacks its skip tensors into one buffer
            before sending them (torch.stack in xDiT's hunyuan_transformer_2d), per patch."""
            b = eng.model.blocks[c.stop - 1]
            return eng.copy_time(2 * b.skip_elems / seq * local.batch * local.elem) if b.skip_elems else 0.0

        latent_patch = eng.model.latent_elems() / local.shard.seq * local.batch * local.elem
        stacks = [stacked(c, local.shard.seq) for c in cuts[:-1]]
        hops = [hop(s, boundary(c, local.shard.seq)) for s, c in enumerate(cuts[:-1])]
        hops_whole = [hop(s, boundary(c, local.shard.seq // m)) for s, c in enumerate(cuts[:-1])]
        back = hop(d - 1, latent_patch) if d > 1 else 0.0
        _, gather_b = eng.after_step()
        other = eng.step_overhead()
        patch_update = SCHEDULER_KERNELS * eng.profile.launch_s(sc.compiled)

        labels = [f"stage {s} ({len(range(*c.indices(len(eng.model.blocks))))} blocks)" for s, c in enumerate(cuts)]
        tl = Timeline(d, labels, record=detail)
        gathers = eng.after_step_dims()
        # xDiT gathers the CFG branches' noise prediction of every patch on the last stage
        # (get_cfg_group().all_gather in _backbone_forward), each call paying its latency
        patch_gathers: dict[str, float] = {}
        for c in eng.step_comms():
            patch_gathers[c.dim] = patch_gathers.get(c.dim, 0.0) + eng.comm_time(
                dataclasses.replace(c, nbytes=c.nbytes / m))

        # each stage's pass: its blocks, with the exposed communication of the dimensions
        # inside the stage (Ulysses, Ring, TP); a patch and (warm-up) the whole image,
        # laid out once and run for every patch
        patch_pass = [pass_pieces(micros[s], c, eng.eta) for s, c in enumerate(cuts)]
        whole_pass = [pass_pieces(wholes[s], c, eng.eta, sync=True) for s, c in enumerate(cuts)]

        def gather(per: dict, after: float, step: int) -> float:
            """The noise-prediction gathers (CFG) on the last stage, blocking its stream."""
            for dim, secs in per.items():
                after = tl.block(d - 1, secs, after=after, label="noise-prediction gather", step=step, dim=dim)
            return after

        units = []
        t = 0.0
        if warm:   # one synchronous step: the whole image through the stages in turn
            for s in range(d):
                t = run_pieces(tl, s, whole_pass[s], t, "warm-up", 0)
                if s < d - 1:
                    t = tl.add(s, COMM, hops_whole[s], after=t, label="activation", step=0, dim=self.key)
            t = tl.host(0, other, after=gather(gathers, t, 0), step=0)
            units.append((0, warm))
        ready = [t] * m           # when patch j of the next step may enter stage 0
        simulated = min(sc.steps - warm, 2)   # fill, then one steady step
        names = [f"patch {j}" for j in range(m)]
        for k in range(simulated):
            step = 1 + k
            # stage by stage, every patch in turn: each row's lanes see their tasks in the
            # order of the patch-by-patch simulation (rows only meet through the arrivals),
            # so this is that simulation, with a stage's patches run in one pass
            arrive = ready
            for s in range(d - 1):
                then = ((self.key, stacks[s], "stack skips"),) if stacks[s] else ()      # stack skips, then send
                arrive = run_stream(tl, s, patch_pass[s], arrive, names, step, then, send=hops[s])
            for j in range(m):
                end = run_pieces(tl, d - 1, patch_pass[d - 1], arrive[j], names[j], step)
                # the last stage finishes the patch: guidance gather, then the scheduler steps
                # the patch (xDiT's patch-aware scheduler: one scheduler.step per patch, its
                # kernels issued by the host), the rest of the step's host work once, and
                # the latent patch goes back to stage 0
                host = patch_update + (other if j == m - 1 else 0.0)
                end = tl.host(d - 1, host, after=gather(patch_gathers, end, step), step=step)
                ready[j] = tl.add(d - 1, COMM, back, after=end, label="latent patch", step=step, part=HIDDEN)
            units.append((step, 1 if k + 1 < simulated else sc.steps - warm - k))

        slowest = max(range(d), key=lambda s: patch_t[s])
        sent = m * max(hops and [boundary(c, local.shard.seq) for c in cuts[:-1]] or [0.0]) + gather_b
        notes = [f"stage cuts by cost: {[c.stop - c.start for c in cuts]} blocks"]
        return summarise(tl, units, critical=slowest, warmup={0}, comm_bytes_per_step=sent, rank_blocks=cuts,
                         cuts=cuts, notes=notes)


STRATEGY = PipeFusion()
