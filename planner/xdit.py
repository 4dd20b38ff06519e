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
    if plan.segments:
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


def device_order(plan: Plan, order: tuple[str, ...], node_of: tuple[int, ...]) -> tuple[list[str] | None, str]:
    """How to run a placed layout under xDiT, which forms its groups from the global
    ranks in its fixed order (tp, sp, pp, cfg, dp inner to outer): permute the GPUs each
    process sees. xDiT rank r holds the coordinates xDiT's order gives r; the placement
    puts those coordinates on GPU p; so r's node lists p's local index at r's local
    position in CUDA_VISIBLE_DEVICES. Returns (one CUDA_VISIBLE_DEVICES value per node,
    ""), or (None, why) when a rank would have to change nodes (a launcher's rank
    mapping can do that; CUDA_VISIBLE_DEVICES cannot). Assumes CUDA numbers a node's
    GPUs as the cluster does (PCIe order: socket 0's GPUs first)."""
    from .layout import XDIT_ORDER, layout_for
    base = plan.base()
    xd, ours = layout_for(base, XDIT_ORDER), layout_for(base, order)
    if xd.ranks != len(node_of):
        return None, f"the plan spans {xd.ranks} GPUs, the cluster {len(node_of)}"
    where = {tuple(sorted(ours.coords(p).items())): p for p in range(ours.ranks)}
    first = {n: node_of.index(n) for n in set(node_of)}
    lists: dict[int, list[int]] = {n: [] for n in sorted(first)}
    for r in range(xd.ranks):
        p = where[tuple(sorted(xd.coords(r).items()))]
        if node_of[p] != node_of[r]:
            return None, (f"xDiT rank {r} would have to run on node {node_of[p]} (GPU {p - first[node_of[p]]}), "
                          f"which needs a launcher that assigns global ranks across nodes")
        lists[node_of[r]].append(p - first[node_of[p]])
    return [",".join(map(str, v)) for _, v in sorted(lists.items())], ""


def xdit_devices(plan: Plan, ilp: dict, cluster) -> dict:
    """For `plan --xdit`: when the placement moved the recommended plan off xDiT's
    order, the GPU order per node that gives xDiT that layout (device_order)."""
    from .ilp.placement import moved_order
    order = moved_order((ilp or {}).get("placement"), str(plan))
    if plan.segments or order is None:
        return {}
    lists, why = device_order(plan, order, cluster.node_of)
    return {"placed_order": list(order), "cuda_visible_devices": lists, "why_not": why or None}
