"""Running a placed layout under an engine whose rank order is fixed.

xDiT, SGLang diffusion and vLLM-Omni build their groups from global ranks in one fixed
order, "tp-sp-pp-cfg-dp" inner to outer (xDiT parallel_state.py; SGLang
runtime/distributed/parallel_state.py@64ec4f88 RankGenerator(..., "tp-sp-pp-cfg-dp");
vLLM-Omni vllm_omni/diffusion/distributed/parallel_state.py, the same RankGenerator), and
diffusers' context-parallel mesh is ("ring", "ulysses"), ulysses inner
(_modeling_parallel.py@0.42.1 ContextParallelConfig.mesh_dim_names): each is
planner/layout.XDIT_ORDER restricted to its dimensions. When the placement search chose
another order, permuting the GPUs each process sees (CUDA_VISIBLE_DEVICES) gives the
engine the placed groups, provided it puts local rank r on visible device r (torchrun's
LOCAL_RANK convention, which all of them follow).
"""
from __future__ import annotations

from ..layout import XDIT_ORDER, layout_for
from ..plan import Plan


def device_order(plan: Plan, order: tuple[str, ...], node_of: tuple[int, ...],
                 engine_order: tuple[str, ...] = XDIT_ORDER) -> tuple[list[str] | None, str]:
    """Engine rank r holds the coordinates the engine's order gives r; the placement puts
    those coordinates on GPU p; so r's node lists p's local index at r's local position
    in CUDA_VISIBLE_DEVICES. Returns (one CUDA_VISIBLE_DEVICES value per node, ""), or
    (None, why) when a rank would have to change nodes (a launcher's rank mapping can do
    that; CUDA_VISIBLE_DEVICES cannot). Assumes CUDA numbers a node's GPUs as the
    cluster does (PCIe order: socket 0's GPUs first)."""
    base = plan.base()
    xd, ours = layout_for(base, engine_order), layout_for(base, order)
    if xd.ranks != len(node_of):
        return None, f"the plan spans {xd.ranks} GPUs, the cluster {len(node_of)}"
    where = {tuple(sorted(ours.coords(p).items())): p for p in range(ours.ranks)}
    first = {n: node_of.index(n) for n in set(node_of)}
    lists: dict[int, list[int]] = {n: [] for n in sorted(first)}
    for r in range(xd.ranks):
        p = where[tuple(sorted(xd.coords(r).items()))]
        if node_of[p] != node_of[r]:
            return None, (f"rank {r} would have to run on node {node_of[p]} (GPU {p - first[node_of[p]]}), "
                          f"which needs a launcher that assigns global ranks across nodes")
        lists[node_of[r]].append(p - first[node_of[p]])
    return [",".join(map(str, v)) for _, v in sorted(lists.items())], ""


def placed_devices(plan: Plan, order: tuple[str, ...] | None, cluster,
                   engine_order: tuple[str, ...] = XDIT_ORDER) -> dict:
    """When the placement moved `plan` off xDiT's order (`order`: the placed order, None if
    not moved): the placed order and the GPU order per node that gives the engine that
    layout (device_order); {} otherwise."""
    if plan.segments or order is None:
        return {}
    lists, why = device_order(plan, order, cluster.node_of, engine_order)
    return {"placed_order": list(order), "cuda_visible_devices": lists, "why_not": why or None}


def device_lines(title: str, devices: dict) -> list[str]:
    """The text lines that say how to get the placed layout under the engine."""
    if not devices.get("placed_order"):
        return []
    how = ("; ".join(f"node {n}: CUDA_VISIBLE_DEVICES={v}" for n, v in enumerate(devices["cuda_visible_devices"]))
           if devices["cuda_visible_devices"] else f"CUDA_VISIBLE_DEVICES cannot do it: {devices['why_not']}")
    return [f"{title} groups its ranks in its own order; the placed layout "
            f"({' < '.join(devices['placed_order'])}) needs its processes on other GPUs: {how}"]
