"""Translate a plan into xDiT (xfuser) command-line flags, or say why it cannot.

xDiT 0.4 main branch: dp x cfg x ulysses x ring x pipefusion x tp; no DistriFusion,
AsyncDiff, ParaDiGMS, ParaStep, Hybridiff or DSP; tensor parallel only for a few models;
PipeFusion only for PixArt, SD3, HunyuanDiT, SANA and Flux; U-Nets only with cfg
(../shared/research/xdit.md (a)). Stage cuts by cost cannot be expressed except through
--attn_layer_num_for_pp, which we emit when the cuts are known.
"""
from __future__ import annotations

from .plan import Plan

XDIT_KEYS = {"dp", "cfg", "ulysses", "ring", "pipefusion", "tp"}
PIPEFUSION_MODELS = ("pixart", "sd3", "hunyuandit", "flux")


def xdit_flags(plan: Plan, model_id: str, arch: str, warmup_default: int = 1,
               stage_blocks: list[int] | None = None) -> tuple[list[str], list[str]]:
    """(flags, problems). Problems are the reasons xDiT cannot run the plan as given."""
    problems = []
    other = [k for k in plan.keys if k not in XDIT_KEYS]
    if other:
        problems.append(f"xDiT has no {', '.join(other)} (main branch; DistriFusion lives in the legacy "
                        f"distrifuser/PipeFusion repositories, the others in their own)")
    if plan.schedule:
        problems.append("xDiT cannot switch strategies during sampling (schedule segments)")
    if plan.degree("pipefusion") > 1 and not any(m in model_id for m in PIPEFUSION_MODELS):
        problems.append(f"xDiT implements PipeFusion only for PixArt, SD3, HunyuanDiT, SANA and Flux, not {model_id}")
    if "unet" in arch.lower() and set(plan.keys) - {"cfg"}:
        problems.append("xDiT supports U-Net models (SDXL) only with cfg=2 on 2 GPUs")
    flags = [f"--data_parallel_degree {plan.degree('dp')}",
             f"--ulysses_degree {plan.degree('ulysses')}",
             f"--ring_degree {plan.degree('ring')}",
             f"--pipefusion_parallel_degree {plan.degree('pipefusion')}",
             f"--tensor_parallel_degree {plan.degree('tp')}"]
    if plan.degree("pipefusion") > 1:
        flags.append(f"--num_pipeline_patch {plan.get('patches', plan.degree('pipefusion'))}")
        flags.append(f"--warmup_steps {plan.get('warmup', warmup_default)}")
        if stage_blocks:
            flags.append(f"--attn_layer_num_for_pp {' '.join(str(b) for b in stage_blocks)}")
    if plan.degree("cfg") == 2:
        flags.append("--use_cfg_parallel")
    return flags, problems
