"""cache-dit (vipshop/cache-dit) on top of diffusers: its ParallelismConfig under torchrun.

Read at src/cache_dit/parallelism/config.py@09b70bb8: ParallelismConfig(ulysses_size,
ring_size, tp_size); tp > 1 with ulysses or ring asserts ("not supported right now"),
ulysses and ring together raise ("not fully supported"); Ulysses / Ring run on diffusers'
context parallelism (NATIVE_DIFFUSER backend) with cache-dit's own `_cp_plan`s, tensor
parallelism on torch's (NATIVE_PYTORCH). Which classes have a plan: one planner file per
class in backends/native_diffusers/context_parallelism/cp_plan_*.py and
backends/native_pytorch/tensor_parallelism/tp_plan_*.py (commits below). The yaml form
is docs/user_guide/LOAD_CONFIGS.md (`parallelism_config:`, `cache_dit.load_configs`).
Newer cache-dit documents 2D ulysses x tp in that file; the rules here are config.py's.
"""
from __future__ import annotations

from .base import Engine, Launch, ModelSupport, at_most_one, decisions, has, lacks, torchrun
from .diffusers import _DTYPE
from .models import DIFFUSERS, ids_of_denoiser

ROOT = "vipshop/cache-dit"
CONF = f"{ROOT}@09b70bb8 src/cache_dit/parallelism/config.py (ParallelismConfig)"
YAML = f"{ROOT} docs/user_guide/LOAD_CONFIGS.md"


def _cp(file: str, commit: str) -> str:
    return f"{ROOT}@{commit} src/cache_dit/parallelism/backends/native_diffusers/context_parallelism/{file}"


def _tp(file: str, commit: str) -> str:
    return f"{ROOT}@{commit} src/cache_dit/parallelism/backends/native_pytorch/tensor_parallelism/{file}"


_FIELDS = "ParallelismConfig has ulysses_size, ring_size and tp_size only"
KEYS = decisions({
    "serial": has("", CONF),
    "ulysses": has("ParallelismConfig(ulysses_size=N)", CONF),
    "ring": has("ParallelismConfig(ring_size=N)", CONF),
    "tp": has("ParallelismConfig(tp_size=N)", CONF),
}, lacks(_FIELDS, CONF))

_SP = frozenset({"ulysses", "ring"})
_ROWS = {   # denoiser class -> (keys, sources)
    "FluxTransformer2DModel": (_SP | {"tp"}, f"{_cp('cp_plan_flux.py', 'b523a90a')}; {_tp('tp_plan_flux.py', '92db44af')}"),
    "PixArtTransformer2DModel": (_SP | {"tp"}, f"{_cp('cp_plan_pixart.py', '6df990e6')}; "
                                               f"{_tp('tp_plan_pixart.py', '22cae47a')}"),
    "WanTransformer3DModel": (_SP | {"tp"}, f"{_cp('cp_plan_wan.py', '93c67db7')}; {_tp('tp_plan_wan.py', '2d310df8')}"),
    "CogVideoXTransformer3DModel": (_SP, _cp("cp_plan_cogvideox.py", "9f812a61")),
    "DiTTransformer2DModel": (_SP, _cp("cp_plan_dit.py", "6df990e6")),
    "HunyuanDiT2DModel": (frozenset({"tp"}), _tp("tp_plan_hunyuan_dit.py", "c6a73acf")),
    "MochiTransformer3DModel": (frozenset({"tp"}), _tp("tp_plan_mochi.py", "bc9eeb9e")),
}
MODELS = {m: ModelSupport(DIFFUSERS[m].repo, *_ROWS[DIFFUSERS[m].denoiser]) for m in ids_of_denoiser(*_ROWS)}


class CacheDit(Engine):
    def models_source(self, model_id):
        return f"{ROOT} src/cache_dit/parallelism/backends/ (no cp_plan_* / tp_plan_* for this class)"

    def constraints(self, plan, model, sc):
        return at_most_one(plan, ("ulysses", "ring", "tp"), "cache-dit", CONF)

    def launch(self, plan, model, sc, cluster) -> Launch:
        cls = DIFFUSERS[model.id]
        conf = {f: plan.degree(k) for k, f in (("ulysses", "ulysses_size"), ("ring", "ring_size"), ("tp", "tp_size"))
                if plan.degree(k) > 1}
        yaml = "parallelism_config:\n" + "".join(f"  {k}: {v}\n" for k, v in conf.items())
        video = sc.frames > 1
        script = "\n".join([
            "# parallel.yaml:", *(f"#   {line}" for line in yaml.splitlines()),
            "import torch", "import torch.distributed as dist", "import cache_dit",
            f"from diffusers import {cls.pipeline}", *(["from diffusers.utils import export_to_video"] if video else []),
            "",
            'dist.init_process_group("nccl")', "rank = dist.get_rank()",
            "torch.cuda.set_device(rank % torch.cuda.device_count())",
            f'pipe = {cls.pipeline}.from_pretrained("{cls.repo}", torch_dtype={_DTYPE.get(sc.dtype, "torch.bfloat16")})'
            '.to("cuda")',
            'cache_dit.enable_cache(pipe, **cache_dit.load_configs("parallel.yaml"))',
            f'out = pipe("...", height={sc.height}, width={sc.width}, num_inference_steps={sc.steps}'
            + (f", num_frames={sc.frames}" if video else "") + ")",
            "if rank == 0:", '    export_to_video(out.frames[0], "out.mp4")' if video else '    out.images[0].save("out.png")',
            "dist.destroy_process_group()", ""])
        return Launch(torchrun(cluster, "run_cache_dit.py"), {"parallelism_config": conf}, script,
                      notes=("parallelism only: add a cache_config to parallel.yaml for cache-dit's caching, which "
                             "changes the output and is not predicted here",))


CACHE_DIT = CacheDit(
    name="cache-dit", title="cache-dit", version="config.py@09b70bb8", keys=KEYS, models=MODELS,
    order=("ulysses", "ring", "tp"), order_source=CONF,
    schedules=lacks("cache-dit applies one ParallelismConfig to the pipeline (no schedule segments)", CONF))
