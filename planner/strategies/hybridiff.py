"""hybridiff: condition-based partitioning with adaptive pipeline switching (Hybridiff),
as its code runs it (jyssys/Hybridiff @2433291).

Two GPUs, one per guidance branch: ranks [0, 1) run the unconditional branch, [1, 2)
the conditional one (hybridiff/pipelines/pipeline_stable_diffusion_xl.py). Every step,
window or not, the pipeline broadcasts the latent model input from the unconditional
leader, runs its U-Net call, synchronises (torch.cuda.synchronize for the timing print),
broadcasts both noise predictions over the world, rank 0 computes the branches' relative
gap (`mae ... .item()`, a host sync), steps the scheduler, broadcasts the latents and
tau, and `HybridDiff.reform_unet` broadcasts its tau buffer and reads it back
(`.tolist()`, a host sync): 4 latent-sized and 2 tiny broadcasts and 3 host syncs a step,
so the host cannot run ahead of the GPU across steps.

Outside the window each rank runs the whole U-Net on its own branch (CFG parallel).
tau1 is found by slope detection on the gap (`L_slope` 12 steps, `eps_slope` 0.4e-3) or
falls back to `tau_cap` (15 in examples/run_sdxl_hybridiff.py), so with SDXL's defaults
it lands in [12, 15]; tau2 = tau1 + k (k = 5 in the example script; the pipeline class
default is 30), and the window `tau1 <= step <= tau2` is k + 1 steps
(hybridiff/hybrid_sd.py unet_forward). Inside it each rank runs only its own part of the
U-Net (pipe_config.py's split, costed as the balanced two-way cut) and reuses the other
part's outputs cached from the step before, still on its own branch (AsyncDiff-style);
`cache_sync` broadcasts every split module's cached output from its owner each step
(16 broadcasts for SDXL, ~113 MB at 1024^2 fp16: the outputs of the model's top-level
modules and their skip tensors), and the U-Net output is broadcast from the last part's
rank, so both ranks take the conditional branch's prediction. The first window step finds
the cache empty and runs every module (set_warmup clears it), so it saves nothing. Only
the window's length and position matter for cost; the window steps are approximate.
"""
from __future__ import annotations

from ..timeline import Timeline, run_pass, summarise
from .base import WARMUP, Modifier, Strategy
from .checks import stale_steps

DEFAULT_K = 5          # examples/run_sdxl_hybridiff.py --k 5
DEFAULT_TAU_CAP = 15   # examples/run_sdxl_hybridiff.py --tau_cap 15 (tau1's latest step)
L_SLOPE = 12           # --L_slope 12: the slope needs this many steps of the gap first


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
    splits = "CFG branches, then each rank its part of the U-Net for k + 1 steps"
    layout_rank = 9
    modifiers = (WARMUP, Modifier("k"))
    collectives = frozenset({"broadcast"})
    owns_loop = True
    stage_cuts = True
    window_modifier = "k"

    def cap(self, model, sc):
        return 2 if sc.cfg else 1

    def variants(self, degrees):
        return [{}] if degrees[self.key] == 2 else []     # one GPU per CFG branch

    def window(self, plan, steps: int) -> int:
        """Steps in the window: tau1..tau1 + k inclusive (unet_forward's pp_active)."""
        return min(int(plan.get("k", DEFAULT_K)) + 1, steps)

    def approx_steps(self, d, plan, steps):
        return self.window(plan, steps)     # only the pipeline window is approximate

    def check(self, d, plan, model, sc):
        errs = []
        if d != 2:
            errs.append(f"hybridiff={d}: Hybridiff runs on 2 GPUs (one per CFG branch)")
        if not sc.cfg:
            errs.append(f"hybridiff needs classifier-free guidance; {model.id} runs without it here")
        k = int(plan.get("k", DEFAULT_K))
        if k >= sc.steps:
            errs.append(f"hybridiff k={k} must be smaller than the {sc.steps} steps")
        return errs + stale_steps(plan, sc, "hybridiff", self.warmup(plan))

    def entered_from(self, plan):
        # the window needs the last unconditional prediction of a CFG-parallel step
        return cfg_phase(plan)

    def loop(self, d, eng, detail):
        sc, local = eng.sc, eng.local
        w = self.window(eng.plan, sc.steps)
        kernel_s = eng.profile.launch_s(sc.compiled)
        other = eng.step_overhead()
        branch = eng.block_costs(batch=local.batch / d)        # one guidance branch per rank
        cuts = eng.balanced_cuts(branch.compute, d)
        latent = eng.model.latent_elems() * local.batch / d * local.elem

        def bcast(nbytes: float) -> float:
            return eng.collective("broadcast", self.key, nbytes)

        # the per-step broadcasts every step makes (latent input, both predictions, the
        # latents after the scheduler; tau twice) and the host work the syncs serialise:
        # the pipeline loop and scheduler, and rank 0's gap (5 kernels and an .item())
        step_comm = 4 * bcast(latent) + 2 * bcast(8.0)
        post_host = other + GAP_KERNELS * kernel_s
        modules = bcast_modules(eng.model, local.batch / d * local.elem)
        module_s = sum(bcast(b) for b in modules)
        tl = Timeline(d, ["rank 0 (uncond. / part 0)", "rank 1 (cond. / part 1)"], record=detail)

        def step(unit: int, label: str, sel_of, extra: float) -> None:
            t0 = max(tl.free_at(r) for r in range(d))
            for r in range(d):     # the host waited at the last sync: the step starts aligned
                tl.wait(r, t0)
            t = max(run_pass(tl, r, branch, sel_of(r), eng.eta, label, unit) for r in range(d))
            for r in range(d):
                end = tl.block(r, step_comm + extra, after=t, label="broadcasts", step=unit, dim=self.key)
                tl.host(r, post_host, after=end, label="gap, scheduler (host syncs)", step=unit)

        units = []
        if sc.steps - w > 0:
            step(0, "CFG branch", lambda r: slice(None), 0.0)
            units.append((0, sc.steps - w))
        if w >= 1:    # the window's first step fills the cache: the whole U-Net, then cache_sync
            step(1, "window: fill the cache", lambda r: slice(None), module_s + bcast(latent))
            units.append((1, 1))
        if w >= 2:
            step(2, "window: own part", lambda r: cuts[r], module_s + bcast(latent))
            units.append((2, w - 1))
        halves = [branch.pass_time(c, eta=eng.eta) for c in cuts]
        return summarise(tl, units, critical=max(range(d), key=lambda r: halves[r]),
                         comm_bytes_per_step=latent * 4 + sum(modules) * w / max(sc.steps, 1), cuts=cuts,
                         notes=[f"CFG parallel for {sc.steps - w} steps, a {w}-step window (k={w - 1}) of "
                                f"half U-Nets on stale module outputs, opening at tau1 in [{L_SLOPE}, "
                                f"{DEFAULT_TAU_CAP}] (slope detection, else tau_cap)"])


# Kernels of rank 0's gap between the branches' predictions each step: sub, abs, mean,
# abs, mean, div (pipeline_stable_diffusion_xl.py `mae`), then .item()
GAP_KERNELS = 6


def bcast_modules(model, per_sample: float) -> list[float]:
    """Bytes of each module output Hybridiff's cache_sync broadcasts a window step: the
    model's top-level modules (zoo blocks grouped by their name's first part: down0, mid,
    up1, ...; each transformer block of a DiT), each module's output plus the skip tensors
    it adds (a down block's res_samples)."""
    out, last, order, skip_before = {}, {}, [], 0
    for b in model.blocks:
        g = b.name.split(".")[0]
        if g not in last:
            order.append(g)
        last[g] = b
    for g in order:
        b = last[g]
        out[g] = (b.tokens * b.hidden + max(0, b.skip_elems - skip_before)) * per_sample
        skip_before = b.skip_elems
    return [out[g] for g in order]


STRATEGY = Hybridiff()
