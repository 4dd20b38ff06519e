"""ulysses: DeepSpeed-Ulysses sequence parallelism (xDiT / yunchang).

Tokens are split over the group. Around each self-attention, all-to-alls turn the
sequence shard into a head shard and the output back: xDiT's xFuserLongContextAttention
(yunchang, use_pack_qkv=False by default) sends Q, K and V in three calls and O in a
fourth, blocking (xdit.md (e)). Each call reshapes, transposes and makes contiguous its
input before and its output after (yunchang comm/all_to_all.py all_to_all_4D; diffusers'
_all_to_all_dim_exchange does the same): two copies of the rank's tensor, 4x its bytes of
device-memory traffic, per call, eager even in compiled runs (the long-context attention
is torch.compiler.disable'd). Exact. The degree (times tp) must divide every attention
head count (the model's SplitConvention may allow padding).
"""
from .base import BLOCKING, Comm, Shard, Strategy
from .checks import SPATIAL_COLLECTIVES, head_cap, spatial_comms

# device-memory bytes of the layout copies around one all-to-all, per byte sent: two
# contiguous copies (before and after), each reading and writing the tensor
COPIES = 4.0


class Ulysses(Strategy):
    key = "ulysses"
    plan_rank = 3
    combines_with = "cfg dp pipefusion"
    splits = "tokens, then heads inside attention"
    layout_rank = 1
    latent_split = "rows"
    collectives = frozenset({"all_to_all", "all_gather"}) | SPATIAL_COLLECTIVES

    def cap(self, model, sc):
        return head_cap(model)

    def check(self, d, plan, model, sc):
        errs = []
        if model.split.seq == "anything":    # ulysses_anything pads the heads (ceil costed)
            return errs
        heads_div = d * plan.degree("tp")
        bad = [h for h in model.attention_heads() if h % heads_div]
        if bad:
            errs.append(f"ulysses={d}{' x tp=' + str(plan.degree('tp')) if plan.degree('tp') > 1 else ''} "
                        f"must divide the attention head counts {list(model.attention_heads())} of {model.id} "
                        f"(yunchang all_to_all_4D gives each rank heads // ulysses)")
        return errs

    def shard(self, d, plan):
        return Shard(seq=d, heads=d)

    def layer_comm(self, d, plan, block, local):
        ops = block.self_attn_ops()
        if not ops:
            return spatial_comms(self.key, block, local, BLOCKING)
        if block.kind == "temporal" and local.frame_split:
            # each rank holds every frame of its rows, so temporal attention is rank-local:
            # xDiT skips its long-context attention there (xFuserAttnProcessor2_0 with
            # latte_temporal_attention, set for temporal_transformer_blocks' attn1 in
            # models/base_model.py _wrap_layers)
            return []
        # each all-to-all moves this rank's token slice of one Q/K/V/O tensor (all its heads)
        per = sum(op.groups * op.tokens / local.shard.seq * op.heads / local.tp * op.head_dim
                  for op in ops) * local.batch * local.elem
        # Q, K, V and O in one call each, each with a contiguous copy on both sides
        out = [Comm("all_to_all", "ulysses", per, BLOCKING, count=4, what="Q,K,V,O all-to-all",
                    copy_bytes=COPIES * per, kernels=3)]
        # joint (MM-DiT) attention: the text is whole on every rank; each rank attends with
        # its heads' share of the text queries, and the text output is all-gathered over
        # the heads (the gathered output: every head of the text tokens)
        text = sum(op.groups * op.q_ctx * op.heads / local.tp * op.head_dim for op in ops) * local.batch * local.elem
        if text:
            out.append(Comm("all_gather", "ulysses", text, BLOCKING, what="joint-attention text output all-gather"))
        return out


STRATEGY = Ulysses()
