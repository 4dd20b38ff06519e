"""naive_patch: patches without interaction, a baseline of the DistriFusion paper.

Each rank denoises its patch as if it were the whole image (attention only within the
patch); nothing is exchanged until the end. Fast, visibly seamed. Evaluated on request only.
"""
from .base import Shard, Strategy
from .checks import rows_divisible
from .distrifusion import PATCH_FAMILY


class NaivePatch(Strategy):
    key = "naive_patch"
    exact = False
    fidelity = "approx"
    recommend = False
    splits = "the image into independent patches"
    combines_with = PATCH_FAMILY

    def check(self, d, plan, model, sc):
        return rows_divisible(plan, model)

    def shard(self, d, plan):
        return Shard(seq=d, q=d, kv=d)
