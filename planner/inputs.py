"""Where options and file fields become a valid model, Scenario and Cluster, once.

    DEFAULT                   the built-in default scenario (`python cli.py plan`)
    scenario(model, ...)      (ModelSpec, Scenario) from raw fields, every one checked
    cluster(gpu, gpus, ...)   a Cluster from --gpu/--gpus/--nodes/--intra/--inter or --cluster
    default_dtype(cluster)    bf16, or fp16 where a GPU has no bf16 (Volta, Turing)
    check_dtype(cluster, d)   every GPU of the cluster computes in d natively

Every option has one default, whatever else is given: `plan --gpus 8` and `plan --gpu l40`
plan the same as plain `plan`. The default scenario's two-socket PCIe box belongs to its GPU:
another --gpu gets that GPU's usual link (planner.cluster.default_intra).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import UsageError
from .limits import BOUNDS, parse_int


@dataclass(frozen=True, slots=True)
class DefaultScenario:
    """PixArt-alpha at 1024^2 on 8x L40 over PCIe across two CPU sockets: the published case
    where Ulysses-8 is slower than one GPU and PipeFusion with CFG parallel wins (PipeFusion
    paper, Fig. 5)."""

    model: str = "pixart-alpha"
    gpu: str = "l40"
    gpus: int = 8
    intra: str = "pcie4-2socket"      # the default GPU's node; other GPUs get their usual link


DEFAULT = DefaultScenario()
SCOPES = ("pipeline", "denoise")
SIZE_FIELDS = ("height", "width", "frames", "steps", "batch", "text_tokens")


def option_name(field: str) -> str:
    return f"--{field.replace('_', '-')}"


def scenario(model_id: str, *, height=None, width=None, frames=None, steps=None, batch=None,
             text_tokens=None, cfg: bool | None = None, dtype: str = "bf16", scope: str = "pipeline",
             compiled: bool = False, name: Callable[[str], str] = option_name, local=None,
             vae_tiling: bool = False, cpu_offload: bool = False):
    """(ModelSpec, Scenario): the sizes are ints or their text (None: the model's default),
    checked against planner.limits.BOUNDS; `name(field)` says where a bad value came from
    ("--steps", "row 3 column steps"). local: a zoo.LocalModel (plan --model-dir) instead of
    the zoo model `model_id`. Raises UsageError or ZooError, one line."""
    from . import zoo
    from .spec import DTYPE_BYTES, Scenario
    facts = local.facts if local is not None else zoo.facts(model_id)
    model_id = facts.id
    given = {"height": height, "width": width, "frames": frames, "steps": steps, "batch": batch,
             "text_tokens": text_tokens}
    v = {k: None if x is None else parse_int(x, name(k), BOUNDS[k]) for k, x in given.items()}
    if dtype not in DTYPE_BYTES:
        raise UsageError(f"{name('dtype')} {dtype}: accepted: {', '.join(DTYPE_BYTES)}")
    if scope not in SCOPES:
        raise UsageError(f"{name('scope')} {scope}: accepted: {', '.join(SCOPES)}")
    sc = Scenario(model=model_id, height=v["height"] or facts.default_height,
                  width=v["width"] or facts.default_width, frames=v["frames"] or facts.default_frames,
                  steps=v["steps"] or facts.default_steps, batch=v["batch"] or 1,
                  cfg=facts.cfg_default if cfg is None else bool(cfg), text_tokens=v["text_tokens"],
                  dtype=dtype, scope=scope, compiled=bool(compiled),
                  vae_tiling=bool(vae_tiling), cpu_offload=bool(cpu_offload))
    try:
        build = local.build if local is not None else lambda *a: zoo.build(model_id, *a)
        model = build(sc.height, sc.width, sc.frames, sc.text_tokens)
    except zoo.ZooError:
        raise
    except ValueError as e:   # sizes this model cannot take: the message names the value
        raise UsageError(str(e)) from None
    return model, sc


def cluster(gpu: str | None = None, gpus=None, nodes=None, intra: str | None = None,
            inter: str | None = None, cluster_file: str | None = None):
    """The cluster the options describe; None means the option was not given."""
    from .cluster import INTER_IDS, build_cluster, load_cluster_file
    if cluster_file is not None:
        given = [option_name(k) for k, x in (("gpu", gpu), ("gpus", gpus), ("nodes", nodes),
                                            ("intra", intra), ("inter", inter)) if x is not None]
        if given:
            raise UsageError(f"--cluster {cluster_file}: the file describes the GPUs and links, so "
                             f"{', '.join(given)} cannot be given with it")
        if not cluster_file.strip():
            raise UsageError("--cluster '': give a cluster file (docs/cluster-file.md)")
        return load_cluster_file(cluster_file)
    gpu = DEFAULT.gpu if gpu is None else gpu
    gpus = DEFAULT.gpus if gpus is None else parse_int(gpus, "--gpus")
    nodes = 1 if nodes is None else parse_int(nodes, "--nodes")
    if nodes == 1 and inter not in (None, "none"):
        raise UsageError(f"--inter {inter}: one node has no link between nodes; give --nodes N (N > 1) "
                         f"or leave --inter out")
    if nodes > 1 and inter in (None, "none"):
        raise UsageError(f"--nodes {nodes} needs --inter, the link between nodes: {', '.join(INTER_IDS[1:])}")
    if nodes > gpus:
        raise UsageError(f"--nodes {nodes}: at most one node per GPU, and --gpus is {gpus}")
    if intra is None and gpu == DEFAULT.gpu:
        intra = DEFAULT.intra
    return build_cluster(gpu, gpus, nodes, intra, inter or "none")


def _distinct(cluster):
    return list({g.id: g for g in cluster.gpus}.values())


def default_dtype(cluster) -> str:
    """bf16 where every GPU has it; fp16 otherwise (Volta and Turing have no bf16 units)."""
    return "bf16" if all("bf16" in dict(g.peak_flops) for g in _distinct(cluster)) else "fp16"


def check_dtype(cluster, dtype: str, name: str = "--dtype") -> None:
    """Refuse a dtype a GPU of the cluster has no peak for (bf16 on a T4, fp8 on an A100):
    the cost model would silently use another dtype's peak."""
    for g in _distinct(cluster):
        have = dict(g.peak_flops)
        if dtype not in have:
            raise UsageError(f"{name} {dtype}: {g.name} ({g.id}) does not compute in {dtype}; "
                             f"accepted on it: {', '.join(d for d in ('bf16', 'fp16', 'fp32', 'tf32', 'fp8') if d in have)}")
