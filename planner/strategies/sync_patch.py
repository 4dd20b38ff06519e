"""sync_patch: synchronous patch parallelism, a baseline of the DistriFusion paper.

Like distrifusion, but every layer waits for the fresh full K/V (blocking all-gather),
so it is exact and its communication is never hidden. Evaluated on request only.
"""
from .base import BLOCKING, Shard, Strategy
from .checks import SPATIAL_COLLECTIVES, row_cap, spatial_comms
from .distrifusion import gather_kv


class SyncPatch(Strategy):
    key = "sync_patch"
    plan_rank = 7
    combines_with = "cfg dp"
    recommend = False
    splits = "the image into patches (fresh K/V every layer)"
    layout_rank = 5
    latent_split = "rows"
    collectives = frozenset({"all_gather"}) | SPATIAL_COLLECTIVES

    def cap(self, model, sc):
        return row_cap(model)

    def shard(self, d, plan):
        return Shard(seq=d, q=d)

    def layer_comm(self, d, plan, block, local):
        return gather_kv(self.key, block, local, BLOCKING) + spatial_comms(self.key, block, local, BLOCKING)


STRATEGY = SyncPatch()
