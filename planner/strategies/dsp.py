"""dsp: dynamic sequence parallelism (VideoSys, ICML'25) for spatial-temporal video DiTs.

Shard along the axis a block does not attend over: frames for spatial attention,
positions for temporal attention. Switching axes between the two is one all-to-all of
the block's activation slice. No head-count limit. Exact. Only for transformers with
factorised spatial/temporal attention (Latte, STDiT: methods.md (11)); not for video U-Nets
(AnimateDiff, SVD), whose convolutions and frame-spanning GroupNorms VideoSys's DSP does
not cover and the executor does not shard by frames (it splits their rows).
"""
from .base import BLOCKING, Comm, Shard, Strategy, activation_bytes
from .checks import row_cap


class DynamicSequence(Strategy):
    key = "dsp"
    plan_rank = 13
    combines_with = "cfg dp"
    splits = "frames (spatial blocks) or positions (temporal blocks)"
    layout_rank = 3
    latent_split = "frames"
    collectives = frozenset({"all_to_all"})

    def cap(self, model, sc):
        return row_cap(model) if model.facts.factorised_attention and model.facts.arch != "video-unet" else 1

    def check(self, d, plan, model, sc):
        if not model.facts.factorised_attention:
            return [f"dsp needs factorised spatial/temporal attention; {model.id} attends over all tokens at once"]
        if model.facts.arch == "video-unet":
            return [f"dsp shards spatial-temporal transformers (Latte, Open-Sora); {model.id} is a video U-Net, "
                    f"whose rows are split instead (ring, ulysses, the patch methods)"]
        bad = sorted({op.groups for b in model.blocks for op in b.self_attn_ops() if op.groups % d})
        if bad:
            return [f"dsp={d} must divide the attention groups {bad} (frames, or positions per frame)"]
        return []

    def shard(self, d, plan):
        return Shard(seq=d, groups=d)

    def layer_comm(self, d, plan, block, local):
        if not any(op.groups > 1 for op in block.self_attn_ops()):
            return ()
        return [Comm("all_to_all", "dsp", activation_bytes(block, local), BLOCKING, what="axis switch")]


STRATEGY = DynamicSequence()
