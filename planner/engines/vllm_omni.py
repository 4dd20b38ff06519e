"""vLLM-Omni diffusion (vllm-project/vllm-omni): DiffusionParallelConfig and `vllm serve --omni`.

Read at vllm_omni/diffusion/data.py@0027c20a: DiffusionParallelConfig(tensor_parallel_size,
ulysses_degree, ring_degree, cfg_parallel_size, pipeline_parallel_size, data_parallel_size
inferred from the world, ulysses_mode "strict" (divisibility required) or "advanced_uaa"
(uneven sequences, non-divisible heads)); the world is pp x dp x tp x sp x cfg with sp =
ulysses x ring. docs/user_guide/diffusion/parallelism_acceleration.md@00b5a4ce: the
per-model table (Ulysses-SP / Ring-SP / CFG-Parallel / Tensor-Parallel) and the serve
flags --usp, --ring, --cfg-parallel-size. Groups: RankGenerator(..., "tp-sp-pp-cfg-dp")
in vllm_omni/diffusion/distributed/parallel_state.py. Models are registered by diffusers
pipeline class (docs/models/supported_models.md, column Architecture), so a row's
support applies to every checkpoint of its class.
"""
from __future__ import annotations

from ..layout import XDIT_ORDER
from .base import Engine, Launch, ModelSupport, decisions, has, lacks
from .models import DIFFUSERS, ids_of_pipeline

ROOT = "vllm-project/vllm-omni"
PA = f"{ROOT}@00b5a4ce docs/user_guide/diffusion/parallelism_acceleration.md"
DATA = f"{ROOT}@0027c20a vllm_omni/diffusion/data.py (DiffusionParallelConfig)"
PS = f"{ROOT} vllm_omni/diffusion/distributed/parallel_state.py (RankGenerator tp-sp-pp-cfg-dp)"

_METHODS = "the guide's methods are Ulysses-SP, Ring, CFG-Parallel, TP, VAE patch parallel and HSDP"
KEYS = decisions({
    "serial": has("", PA),
    "ulysses": has("ulysses_degree (--usp)", PA),
    "ring": has("ring_degree (--ring)", PA),
    "cfg": has("cfg_parallel_size=2 (--cfg-parallel-size 2)", PA),
    "tp": has("tensor_parallel_size (--tensor-parallel-size); shards most DiT layers", PA),
    "dp": lacks("data_parallel_size is inferred from the world as whole-pipeline replicas; nothing splits one "
                "request's images", DATA),
    "pipefusion": lacks("pipeline_parallel_size exists, but the guide documents no pipeline method and none with "
                        "PipeFusion's stale-K/V patches", PA),
}, lacks(_METHODS, PA))

# pipeline class -> (keys, the table row they are read from)
_ROWS = {
    "FluxPipeline": (frozenset({"cfg", "tp"}), "FLUX.1-dev: CFG-Parallel, Tensor-Parallel (no SP)"),
    "StableDiffusion3Pipeline": (frozenset({"tp"}), "Stable-Diffusion3.5: Tensor-Parallel only"),
    "WanPipeline": (frozenset({"ulysses", "ring", "tp"}), "Wan2.2 (WanPipeline): Ulysses-SP, Ring, TP"),
}
MODELS = {m: ModelSupport(DIFFUSERS[m].repo, _ROWS[DIFFUSERS[m].pipeline][0], PA, _ROWS[DIFFUSERS[m].pipeline][1])
          for m in ids_of_pipeline(*_ROWS)}


class VllmOmni(Engine):
    def models_source(self, model_id):
        return f"{PA} (not in its model tables)"

    def launch(self, plan, model, sc, cluster) -> Launch:
        ms = self.model_support(model.id)
        conf = {"ulysses_degree": plan.degree("ulysses"), "ring_degree": plan.degree("ring"),
                "cfg_parallel_size": plan.degree("cfg"), "tensor_parallel_size": plan.degree("tp")}
        flags = [f"{flag} {v}" for flag, v in (("--usp", conf["ulysses_degree"]), ("--ring", conf["ring_degree"]),
                                               ("--cfg-parallel-size", conf["cfg_parallel_size"]),
                                               ("--tensor-parallel-size", conf["tensor_parallel_size"])) if v > 1]
        name = ms.name if ms else model.id
        args = ", ".join(f"{k}={v}" for k, v in conf.items() if v > 1)
        script = "\n".join([
            "from vllm_omni import Omni",
            "from vllm_omni.diffusion.data import DiffusionParallelConfig",
            "from vllm_omni.inputs.data import OmniDiffusionSamplingParams",
            "",
            f'omni = Omni(model="{name}", parallel_config=DiffusionParallelConfig({args}))',
            f'outputs = omni.generate("...", OmniDiffusionSamplingParams(num_inference_steps={sc.steps}, '
            f'width={sc.width}, height={sc.height}))', ""])
        notes = []
        if conf["cfg_parallel_size"] > 1:
            notes.append("CFG-Parallel takes effect only with a negative prompt and a guidance scale > 1")
        if sc.frames > 1:
            notes.append(f"a video: set the sampling parameters' frame count ({sc.frames} frames) as well")
        return Launch(f"vllm serve {name} --omni --port 8091 {' '.join(flags)}".rstrip(), conf, script, tuple(notes))


VLLM_OMNI = VllmOmni(
    name="vllm-omni", title="vLLM-Omni", version="data.py@0027c20a, docs@00b5a4ce",
    keys=KEYS, models=MODELS, order=XDIT_ORDER, order_source=PS,
    schedules=lacks("vLLM-Omni runs one DiffusionParallelConfig per engine (no schedule segments)", DATA))
