"""SGLang diffusion (sgl-project/sglang, python/sglang/multimodal_gen): server / CLI flags.

Read at runtime/server_args.py@011b8cad: the parallel options are --num-gpus, --tp-size,
--sp-degree (= ulysses x ring, checked), --ulysses-degree, --ring-degree,
--enable-cfg-parallel and --dp-size (which raises "DP is not yet supported"); left
unset, sp_degree takes every GPU left after tp x cfg and becomes Ulysses; ring needs the
flash or sage attention backend (set automatically). docs/cli.md@01c6d1b6: --tp-size
is for the text encoder. runtime/distributed/parallel_state.py@64ec4f88: groups from
RankGenerator(tp, sp, pp, cfg, dp, "tp-sp-pp-cfg-dp"), Ulysses inside Ring (yunchang).
Native pipelines (runtime/pipelines/, runtime/models/dits/): Flux, SD3, Wan,
HunyuanVideo; other models run on the "diffusers backend" (vanilla diffusers pipelines,
docs/cli.md), which has none of these parallel options.
"""
from __future__ import annotations

from ..layout import XDIT_ORDER
from .base import Engine, Launch, ModelSupport, decisions, has, lacks
from .models import DIFFUSERS, ids_of_pipeline

ROOT = "sgl-project/sglang"
SA = f"{ROOT}@011b8cad python/sglang/multimodal_gen/runtime/server_args.py"
CLI = f"{ROOT}@01c6d1b6 python/sglang/multimodal_gen/docs/cli.md"
PS = f"{ROOT}@64ec4f88 python/sglang/multimodal_gen/runtime/distributed/parallel_state.py"
PIPES = f"{ROOT} python/sglang/multimodal_gen/runtime/pipelines"
_NATIVE = {   # pipeline class -> where its native SGLang implementation is
    "FluxPipeline": f"{PIPES}/flux.py@a1b6e398 (dits/flux.py@00bedbb6)",
    "StableDiffusion3Pipeline": f"{PIPES}/stable_diffusion_3.py@418218c1 (dits/stablediffusion3.py@9e01161f)",
    "WanPipeline": f"{ROOT}@01f06e42 python/sglang/multimodal_gen/runtime/models/dits/wanvideo.py",
    "HunyuanVideoPipeline": f"{PIPES}/hunyuan_pipeline.py@dec8155f (dits/hunyuanvideo.py@51ff73f6)",
}

_OTHER = "ServerArgs' parallel options are num_gpus, tp_size, sp_degree = ulysses x ring, dp_size and cfg parallel"
KEYS = decisions({
    "serial": has("", SA),
    "cfg": has("--enable-cfg-parallel", SA),
    "ulysses": has("--ulysses-degree", SA),
    "ring": has("--ring-degree", SA),
    "tp": lacks("--tp-size shards the text encoder, not the DiT (wanvideo.py@01f06e42 uses ReplicatedLinear; "
                "Flux shards only its feed-forward)", CLI),
    "dp": lacks("--dp-size > 1 raises 'DP is not yet supported'", SA),
    "pipefusion": lacks("no pipeline-parallel option (the pipeline degree of initialize_model_parallel is never "
                        "set from ServerArgs)", SA),
}, lacks(_OTHER, SA))

MODELS = {m: ModelSupport(DIFFUSERS[m].repo, frozenset({"cfg", "ulysses", "ring"}), _NATIVE[DIFFUSERS[m].pipeline])
          for m in ids_of_pipeline(*_NATIVE)}


class SGLang(Engine):
    def models_source(self, model_id):
        return (f"{CLI} (no native pipeline: the diffusers backend runs vanilla diffusers pipelines, without "
                f"SGLang's parallel options)")

    def launch(self, plan, model, sc, cluster) -> Launch:
        ms = self.model_support(model.id)
        conf = {"num_gpus": cluster.n, "ulysses_degree": plan.degree("ulysses"), "ring_degree": plan.degree("ring"),
                "enable_cfg_parallel": plan.degree("cfg") == 2}
        flags = [f"--model-path {ms.name if ms else model.id}", f"--num-gpus {cluster.n}",
                 f"--ulysses-degree {conf['ulysses_degree']}", f"--ring-degree {conf['ring_degree']}"]
        if conf["enable_cfg_parallel"]:
            flags.append("--enable-cfg-parallel")
        sample = [f"--height {sc.height}", f"--width {sc.width}", f"--num-inference-steps {sc.steps}"]
        if sc.frames > 1:
            sample.append(f"--num-frames {sc.frames}")
        generate = f"sglang generate {' '.join(flags + sample)} --prompt \"...\" --save-output"
        return Launch(f"sglang serve {' '.join(flags)}", conf,
                      notes=(f"one-off: {generate}",
                             "the degrees are given explicitly, so the server's defaults (every GPU left after "
                             "tp x cfg to Ulysses) do not apply"))


SGLANG = SGLang(
    name="sglang", title="SGLang diffusion", version="multimodal_gen server_args.py@011b8cad",
    keys=KEYS, models=MODELS, order=XDIT_ORDER, order_source=PS,
    schedules=lacks("SGLang diffusion runs one parallel layout per server (no schedule segments)", SA),
    multi_node=lacks("ServerArgs has no multi-node option (--num-gpus on one host)", SA))
