"""hybridiff: condition-based partitioning with adaptive pipeline switching (Hybridiff).

Two GPUs run the conditional and unconditional branches (CFG parallel) for most steps;
for a window of k steps (default 5, the paper's default) they switch to an
AsyncDiff-style two-stage pipeline in which each GPU runs half of the denoiser on
staggered timesteps. The window opens where the gap between the two branches'
predictions stops changing (the paper's rel-MAE slope test), so inside it the
unconditional prediction is taken from the last CFG step and only the conditional
branch runs (ASSUMED from the method summary in methods.md: this is what makes the
window faster than CFG parallel). For cost only the window's length matters.
Switching re-shards the latents twice. Approximate (inside the window).
"""
from __future__ import annotations

from ..timeline import Timeline, run_pass, summarise
from .base import WARMUP, Modifier, Strategy
from .checks import stale_steps

DEFAULT_K = 5


def cfg_phase(plan):
    """Hybridiff's CFG-parallel phase: `plan` with its hybridiff dimension as cfg. A
    schedule segment of hybridiff opens its window out of this plan (it needs the last
    unconditional prediction and the stage-boundary handover of a CFG step)."""
    return plan.replace(hybridiff=None, k=None, cfg=plan.degree("hybridiff"))


class Hybridiff(Strategy):
    key = "hybridiff"
    plan_rank = 12
    combines_with = "dp"
    exact = False
    fidelity = "approx"
    splits = "CFG branches, then a two-stage pipeline for k steps"
    layout_rank = 9
    modifiers = (WARMUP, Modifier("k"))
    collectives = frozenset({"all_gather", "broadcast"})
    owns_loop = True
    stage_cuts = True
    window_modifier = "k"

    def cap(self, model, sc):
        return 2 if sc.cfg else 1

    def variants(self, degrees):
        return [{}] if degrees[self.key] == 2 else []     # one GPU per CFG branch

    def window(self, plan, steps: int) -> int:
        return min(int(plan.get("k", DEFAULT_K)), steps)

    def approx_steps(self, d, plan, steps):
        return self.window(plan, steps)     # only the pipeline window is approximate

    def check(self, d, plan, model, sc):
        errs = []
        if d != 2:
            errs.append(f"hybridiff={d}: Hybridiff runs on 2 GPUs (one per CFG branch)")
        if not sc.cfg:
            errs.append(f"hybridiff needs classifier-free guidance; {model.id} runs without it here")
        if self.window(plan, sc.steps) >= sc.steps:
            errs.append(f"hybridiff k={plan.get('k', DEFAULT_K)} must be smaller than the {sc.steps} steps")
        return errs + stale_steps(plan, sc, "hybridiff", self.warmup(plan))

    def entered_from(self, plan):
        # the window needs the last unconditional prediction of a CFG-parallel step
        return cfg_phase(plan)

    def loop(self, d, eng, detail):

        sc, local = eng.sc, eng.local
        k = self.window(eng.plan, sc.steps)
        other = eng.step_overhead()
        # CFG phase: one branch per GPU, then all-gather the two noise predictions
        branch = eng.block_costs(batch=local.batch / d)
        noise = eng.model.latent_elems() * local.batch * local.elem
        # pipeline window: half of the denoiser per GPU, conditional branch only
        both = eng.block_costs(batch=local.batch / d)
        cuts = eng.balanced_cuts(both.compute, d)
        b = eng.model.blocks[cuts[0].stop - 1]
        act = (b.tokens * b.hidden + b.skip_elems) * local.batch / d * local.elem
        gather = eng.collective("all_gather", self.key, noise)
        tl = Timeline(d, ["rank 0 (cond. / stage 0)", "rank 1 (uncond. / stage 1)"])
        # the window's steps, the two re-shards around it, then the CFG steps (the steady unit)
        t = max(run_pass(tl, r, both, cuts[r], eng.eta, "pipeline half", 0) for r in range(d))
        for nbytes, what in ((act, "stage boundary"), (noise / d, "noise prediction")):
            t = max(tl.block(r, eng.collective("broadcast", self.key, nbytes), after=t, label=f"broadcast {what}",
                             step=0, dim=self.key) for r in range(d))
        t = max(tl.host(r, other, after=t, step=0) for r in range(d))
        for r in range(d):     # re-shard the latents into the window and out of it
            tl.block(r, 2 * gather, after=t, label="switch re-shard", step=1, dim=self.key)
        t = max(run_pass(tl, r, branch, slice(None), eng.eta, "CFG branch", 2, after=tl.free_at(r))
                for r in range(d))
        t = max(tl.block(r, gather, after=t, label="noise gather", step=2, dim=self.key) for r in range(d))
        for r in range(d):
            tl.host(r, other, after=t, step=2)
        halves = [both.pass_time(c, eta=eng.eta) for c in cuts]
        return summarise(tl, [(0, k), (1, 1), (2, sc.steps - k)], critical=max(range(d), key=lambda r: halves[r]),
                         comm_bytes_per_step=noise, cuts=cuts,
                         notes=[f"CFG parallel for {sc.steps - k} steps, 2-stage pipeline for k={k} steps"])


STRATEGY = Hybridiff()
