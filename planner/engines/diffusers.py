"""diffusers' native parallelism (`ModelMixin.enable_parallelism`) under torchrun.

Read in diffusers 0.42.1 (pip), src/diffusers/:
- models/_modeling_parallel.py: ContextParallelConfig(ring_degree, ulysses_degree,
  ulysses_anything, ring_anything, ...), TensorParallelConfig(tp_degree), and
  ParallelConfig, which refuses context and tensor parallelism together; CFG and data
  parallel are a TODO at the top of the file.
- models/modeling_utils.py: enable_parallelism needs a `_cp_plan` (or one passed in) and
  a context-parallel attention backend; _resolve_parallel_config builds one device mesh
  of shape (ring, ulysses) or (tp,) over the whole world, so the degrees multiply to the
  world size.
- hooks/context_parallel.py: EquipartitionSharder asserts that a split dimension divides
  by the mesh size; ulysses_anything / ring_anything shard unevenly instead
  (PartitionAnythingSharder, tensor_split).
- models/attention_dispatch.py: the "native" SDPA backend raises on return_lse, which
  ring attention needs; "_native_cudnn" returns it and supports context parallelism.
- Classes with `_cp_plan` among the zoo's: FluxTransformer2DModel (splits hidden_states
  and encoder_hidden_states) and WanTransformer3DModel (hidden_states only; its comment
  says the text is not split); `_tp_plan`: FluxTransformer2DModel only.
"""
from __future__ import annotations

from .base import Engine, Launch, ModelSupport, Refusal, decisions, has, lacks, text_tokens, torchrun
from .models import DIFFUSERS, ids_of_denoiser

V = "huggingface/diffusers@0.42.1"
MP = f"{V} src/diffusers/models/_modeling_parallel.py"
MU = f"{V} src/diffusers/models/modeling_utils.py (enable_parallelism)"
CPH = f"{V} src/diffusers/hooks/context_parallel.py (EquipartitionSharder)"
FLUX = f"{V} src/diffusers/models/transformers/transformer_flux.py (_cp_plan, _tp_plan)"
WAN = f"{V} src/diffusers/models/transformers/transformer_wan.py (_cp_plan)"

_ONLY = "enable_parallelism applies context parallelism (ring/ulysses) or tensor parallelism only"
KEYS = decisions({
    "serial": has("", MU),
    "ulysses": has("ContextParallelConfig(ulysses_degree=N)", MP),
    "ring": has("ContextParallelConfig(ring_degree=N)", MP),
    "tp": has("TensorParallelConfig(tp_degree=N)", MP),
    "cfg": lacks("ParallelConfig holds context and tensor parallelism only; CFG parallel is a TODO", MP),
    "dp": lacks("ParallelConfig holds context and tensor parallelism only; data parallel is a TODO", MP),
    "pipefusion": lacks("ParallelConfig has no pipeline parallelism", MP),
}, lacks(_ONLY, MU))

MODELS = {m: ModelSupport(DIFFUSERS[m].repo, frozenset({"ulysses", "ring", "tp"}), FLUX,
                          "splits the image and the text tokens")
          for m in ids_of_denoiser("FluxTransformer2DModel")}
MODELS |= {m: ModelSupport(DIFFUSERS[m].repo, frozenset({"ulysses", "ring"}), WAN, "splits the video tokens")
           for m in ids_of_denoiser("WanTransformer3DModel")}
# the transformer inputs each `_cp_plan` splits along the sequence (beyond the image/video stream)
_SPLITS_TEXT = frozenset(ids_of_denoiser("FluxTransformer2DModel"))

_DTYPE = {"bf16": "torch.bfloat16", "fp16": "torch.float16", "fp32": "torch.float32", "tf32": "torch.float32"}


def cp_config(plan, model, sc) -> dict:
    """ContextParallelConfig fields for the plan: equal shards when every split
    sequence divides, else the 'anything' mode of the one degree in use."""
    u, r = plan.degree("ulysses"), plan.degree("ring")
    conf = {"ulysses_degree": u, "ring_degree": r}
    n = u * r
    uneven = [t for t in _split_lengths(model, sc) if t % n]
    if uneven and r == 1:
        conf["ulysses_anything"] = True
    elif uneven and u == 1:
        conf["ring_anything"] = True
    return conf


def _split_lengths(model, sc) -> list[int]:
    lengths = [model.tokens]
    if model.id in _SPLITS_TEXT:
        lengths.append(text_tokens(model, sc))
    return lengths


class Diffusers(Engine):
    def models_source(self, model_id):
        return f"{MU}: no `_cp_plan` / `_tp_plan` on {DIFFUSERS[model_id].denoiser}" if model_id in DIFFUSERS \
            else f"{V}: no diffusers class"

    def constraints(self, plan, model, sc):
        u, r, t = plan.degree("ulysses"), plan.degree("ring"), plan.degree("tp")
        out = []
        if t > 1 and u * r > 1:
            out.append(Refusal("diffusers cannot combine context parallelism (ulysses/ring) with tensor "
                               "parallelism in one ParallelConfig", MP))
        n = u * r
        uneven = [t for t in _split_lengths(model, sc) if t % n]
        if n > 1 and uneven and u > 1 and r > 1:
            out.append(Refusal(f"diffusers splits {model.id}'s sequences ({', '.join(map(str, _split_lengths(model, sc)))} "
                               f"tokens) into {n} equal shards, {uneven[0]} does not divide, and ulysses_anything / "
                               f"ring_anything need the other degree to be 1", f"{CPH}; {MP}"))
        return out

    def launch(self, plan, model, sc, cluster) -> Launch:
        cls = DIFFUSERS[model.id]
        if plan.degree("tp") > 1:
            conf, cfg_cls = {"tp_degree": plan.degree("tp")}, "TensorParallelConfig"
        elif plan.is_serial:
            conf, cfg_cls = {}, None
        else:
            conf, cfg_cls = cp_config(plan, model, sc), "ContextParallelConfig"
        video = sc.frames > 1
        lines = ["import torch", "import torch.distributed as dist",
                 f"from diffusers import {cls.pipeline}" + (f", {cfg_cls}" if cfg_cls else "")]
        if video:
            lines.append("from diffusers.utils import export_to_video")
        lines += ["", 'dist.init_process_group("nccl")', "rank = dist.get_rank()",
                  "torch.cuda.set_device(rank % torch.cuda.device_count())",
                  f'pipe = {cls.pipeline}.from_pretrained("{cls.repo}", torch_dtype={_DTYPE.get(sc.dtype, "torch.bfloat16")}).to("cuda")']
        if plan.degree("ring") > 1:
            lines.append('pipe.transformer.set_attention_backend("_native_cudnn")  # ring needs the LSE')
        if cfg_cls:
            args = ", ".join(f"{k}={v}" for k, v in conf.items())
            lines.append(f"pipe.transformer.enable_parallelism(config={cfg_cls}({args}))")
        call = (f'pipe("...", height={sc.height}, width={sc.width}, num_inference_steps={sc.steps}'
                + (f", num_frames={sc.frames}" if video else "")
                + ', generator=torch.Generator("cuda").manual_seed(0))')
        lines += [f"out = {call}", "if rank == 0:",
                  '    export_to_video(out.frames[0], "out.mp4")' if video else '    out.images[0].save("out.png")',
                  "dist.destroy_process_group()"]
        notes = ["every rank runs the whole pipeline; the transformer's degrees multiply to the world size "
                 "(one device mesh over all ranks)"]
        if conf.get("ulysses_anything") or conf.get("ring_anything"):
            notes.append("a split sequence does not divide into equal shards, so the config uses diffusers' "
                         "'anything' mode (uneven shards)")
        return Launch(torchrun(cluster, "run_diffusers.py"), {"class": cfg_cls, **conf}, "\n".join(lines) + "\n",
                      tuple(notes))


DIFFUSERS_ENGINE = Diffusers(
    name="diffusers", title="diffusers", version="0.42.1", keys=KEYS, models=MODELS,
    order=("ulysses", "ring", "tp"), order_source=f"{MP} (ContextParallelConfig.mesh_dim_names ring, ulysses)",
    schedules=lacks("diffusers runs one parallel config for the whole call (no schedule segments)", MU))
