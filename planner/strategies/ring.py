"""ring: ring attention (sequence parallelism with K/V passed point to point).

Tokens are split over the group; inside each self-attention every rank computes its
queries against one K/V block at a time while the next block arrives from its ring
neighbour (online softmax over blocks). r-1 passes per attention, each overlapping the
attention of the block before it. Exact. With ulysses it forms USP (ulysses inside,
ring outside): the ring passes the K/V of the rank's Ulysses head shard.
"""
from .base import BLOCKING, IN_ATTENTION, Comm, Shard, Strategy
from .checks import SPATIAL_COLLECTIVES, row_cap, spatial_comms

MERGE_BYTES = 18.0    # device-memory bytes per output element of one online-softmax merge


class Ring(Strategy):
    key = "ring"
    plan_rank = 4
    combines_with = "cfg dp pipefusion ulysses"
    splits = "tokens; K/V blocks circulate"
    layout_rank = 2
    latent_split = "rows"
    collectives = frozenset({"p2p"}) | SPATIAL_COLLECTIVES
    overlaps_compute = True

    def cap(self, model, sc):
        return row_cap(model)

    def shard(self, d, plan):
        return Shard(seq=d, q=d, kv_chunks=d)

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
        u = plan.degree("ulysses")
        # one K/V block: this rank's token slice, for its Ulysses head shard
        kv = sum(2 * op.groups * op.kv_tokens / local.shard.seq * u * op.heads / (local.tp * u) * op.head_dim
                 for op in ops) * local.batch * local.elem
        # after each block the partial output merges into the running one in fp32
        # (ring-flash-attention's _update_out_and_lse: cast the block's output, then
        # out - sigmoid(lse_blk - lse) * (out - out_blk), fused): about 18 bytes per output
        # element (bf16 read, fp32 write and read of the block, fp32 read and write of out)
        outs = sum(op.groups * (op.tokens / local.shard.seq + op.q_ctx) * u * op.heads / (local.tp * u) * op.head_dim
                   for op in ops) * local.batch
        return [Comm("p2p", "ring", kv, IN_ATTENTION, count=d - 1, what="K/V ring pass",
                     copy_bytes=MERGE_BYTES * outs, kernels=3)]


STRATEGY = Ring()
