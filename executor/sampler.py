"""The denoising loop: a real sampler with classifier-free guidance, run under a plan.

    NoiseSchedule   DDIM (eta 0) for epsilon-prediction models, Euler for rectified-flow
                    (flow-matching) models; `step` is elementwise, so it updates any slice
                    of the latent a rank holds.
    segments(plan)  the steps grouped by the plan that runs them: plan.plan_at(step) for
                    every step, consecutive equal plans merged (a step schedule like
                    `cfg=2 | 15-20: hybridiff=2 k=5` gives three segments).
    denoise(...)    the loop itself: for each segment, its strategy (executor/strategies)
                    advances the full latent over the segment's steps.

Guidance: eps = eps_uncond + scale * (eps_cond - eps_uncond).
"""
from __future__ import annotations

import math

import torch

from planner.plan import Plan

TRAIN_STEPS = 1000


class NoiseSchedule:
    """prediction: what the model outputs on the DDIM path, the noise ("epsilon") or
    v = sqrt(a) noise - sqrt(1 - a) x0 ("v_prediction": SD2.1-v, CogVideoX)."""

    def __init__(self, steps: int, flow: bool, shift: float = 3.0, prediction: str = "epsilon"):
        self.steps, self.flow, self.prediction = steps, flow, prediction
        if flow:
            # SD3's shifted sigmas: more of the budget at high noise
            s = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
            self.sigmas = shift * s / (1 + (shift - 1) * s)
            self.t = (self.sigmas[:-1] * TRAIN_STEPS).tolist()
        else:
            # SD's scaled-linear betas; DDIM visits evenly spaced training timesteps
            betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, TRAIN_STEPS, dtype=torch.float64) ** 2
            self.alphas = torch.cumprod(1 - betas, 0)
            ts = [round(v) for v in torch.linspace(TRAIN_STEPS - 1, 0, steps).tolist()]
            self.t = [float(v) for v in ts]
            self.a = [float(self.alphas[v]) for v in ts]
            self.a_next = self.a[1:] + [1.0]   # the last step lands on the clean sample

    def timestep(self, i: int) -> float:
        """The model's timestep input at step i (0-based)."""
        return self.t[i]

    def step(self, x: torch.Tensor, eps: torch.Tensor, i: int) -> torch.Tensor:
        """The latent after step i, from the (guided) model output at step i."""
        eps = eps.to(x.dtype)
        if self.flow:   # the model predicts the velocity noise - data
            return x + (float(self.sigmas[i + 1]) - float(self.sigmas[i])) * eps
        a, an = self.a[i], self.a_next[i]
        if self.prediction == "v_prediction":
            v = eps
            x0 = math.sqrt(a) * x - math.sqrt(1 - a) * v
            eps = math.sqrt(1 - a) * x + math.sqrt(a) * v
            return math.sqrt(an) * x0 + math.sqrt(1 - an) * eps
        x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        return math.sqrt(an) * x0 + math.sqrt(1 - an) * eps


def guide(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    return eps_uncond + scale * (eps_cond - eps_uncond)


def segments(plan: Plan, steps: int) -> list[tuple[Plan, int, int]]:
    """(plan, first, last) for runs of consecutive steps (1-based, inclusive) that
    plan.plan_at gives the same plan."""
    out: list[tuple[Plan, int, int]] = []
    for step in range(1, steps + 1):
        p = plan.plan_at(step)
        if out and out[-1][0] == p:
            out[-1] = (p, out[-1][1], step)
        else:
            out.append((p, step, step))
    return out


def denoise(rt, x: torch.Tensor) -> torch.Tensor:
    """Run every step of rt.job on the full initial latent x; returns the full final
    latent on every rank. rt (executor/runtime.py Runtime) gives each segment's Setup:
    its process groups, model, ctx and the strategy that owns its steps."""
    segs = segments(rt.plan, rt.job.steps)
    rt.carry = {}          # what one segment hands the next (strategies/hybridiff.py's handover)
    for k, (plan, first, last) in enumerate(segs):
        rt.next_plan = segs[k + 1][0] if k + 1 < len(segs) else None
        setup = rt.setup(plan)
        x = setup.loop.run(setup, x, range(first - 1, last))
    return x
