"""sync_patch: synchronous patch parallelism, a baseline of the DistriFusion paper.

Like distrifusion, but every layer waits for the fresh full K/V (blocking all-gather),
so it is exact and its communication is never hidden. Evaluated on request only.
"""
from .base import BLOCKING, Shard, Strategy
from .checks import rows_divisible, spatial_comms
from .distrifusion import PATCH_FAMILY, gather_kv


class SyncPatch(Strategy):
    key = "sync_patch"
    recommend = False
    splits = "the image into patches (fresh K/V every layer)"
    combines_with = PATCH_FAMILY

    def check(self, d, plan, model, sc):
        return rows_divisible(plan, model)

    def shard(self, d, plan):
        return Shard(seq=d, q=d)

    def layer_comm(self, d, plan, block, local):
        return gather_kv(self.key, block, local, BLOCKING) + spatial_comms(self.key, block, local, BLOCKING)
