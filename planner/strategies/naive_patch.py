"""naive_patch: patches without interaction, a baseline of the DistriFusion paper.

Each rank denoises its patch as if it were the whole image (attention only within the
patch); nothing is exchanged until the end. Fast, visibly seamed. Evaluated on request only.
"""
from .base import Shard, Strategy
from .checks import row_cap


class NaivePatch(Strategy):
    key = "naive_patch"
    plan_rank = 8
    combines_with = "cfg dp"
    exact = False
    fidelity = "approx"
    recommend = False
    splits = "the image into independent patches"
    layout_rank = 6
    latent_split = "rows"

    def cap(self, model, sc):
        return row_cap(model)

    def shard(self, d, plan):
        return Shard(seq=d, q=d, kv=d)


STRATEGY = NaivePatch()
