"""distrifusion: displaced patch parallelism (DistriFusion, CVPR'24).

Each rank holds the whole model and computes one horizontal patch of the image. Its
self-attention attends to the full-image K/V, whose remote parts are one step stale:
every layer starts an asynchronous all-gather of its fresh K/V, used at the next step,
so the traffic hides under the step's compute (at the overlap efficiency of the
calibration: NCCL kernels take SMs, methods.md "Collective cost factors").
The first `warmup` steps (default 4, DistriFusion's warmup_steps) run as synchronous
patch parallelism. Memory: the full stale K/V of every layer plus the buffer the
in-flight all-gather writes into, so it does not shrink with N. Approximate.
"""
from .base import IN_STEP, WARMUP, Comm, Shard, Strategy, self_attention_kv_bytes
from .checks import SPATIAL_COLLECTIVES, row_cap, spatial_comms, stale_steps


def gather_kv(key: str, block, local, overlap: str):
    """All-gather of a block's fresh self-attention K/V (gathered size per rank)."""
    full = self_attention_kv_bytes(block, local, full=True)
    return [Comm("all_gather", key, full, overlap, what="K/V all-gather")] if full else []


class DistriFusion(Strategy):
    key = "distrifusion"
    plan_rank = 6
    combines_with = "cfg dp"
    exact = False
    fidelity = "near"
    splits = "the image into patches (stale remote K/V)"
    default_warmup = 4
    layout_rank = 4
    latent_split = "rows"
    modifiers = (WARMUP,)
    collectives = frozenset({"all_gather"}) | SPATIAL_COLLECTIVES
    overlaps_compute = True

    def cap(self, model, sc):
        return row_cap(model)

    def check(self, d, plan, model, sc):
        return stale_steps(plan, sc, "distrifusion", self.warmup(plan))

    def shard(self, d, plan):
        return Shard(seq=d, q=d)

    def layer_comm(self, d, plan, block, local):
        # halos and GroupNorm statistics are stale too (one step old), so they hide as well
        return gather_kv(self.key, block, local, IN_STEP) + spatial_comms(self.key, block, local, IN_STEP)

    def buffer_bytes(self, d, plan, blocks, local):
        # the stale K/V of every layer and the buffer its in-flight all-gather writes, plus
        # the full K/V one layer concatenates from them (pipefuser DistriSelfAttentionPP:
        # full_kv = torch.cat(new_buffer_list, dim=1)), a transient of the largest layer
        kv = [self_attention_kv_bytes(b, local, full=True) for b in blocks]
        return 2 * sum(kv) + max(kv, default=0.0)


STRATEGY = DistriFusion()
