"""dp: data parallel over images. Each group of GPUs generates its own images.

It shortens nothing for one image: it only helps when --batch > 1 (throughput).
Communication: none while denoising (images are collected at the end).
"""
from .base import Strategy


class DataParallel(Strategy):
    key = "dp"
    plan_rank = 1
    combines_with = "cfg"
    splits = "the images of the batch"
    layout_rank = 13

    def cap(self, model, sc):
        return sc.batch

    def check(self, d, plan, model, sc):
        if sc.batch % d:
            return [f"dp={d} needs the batch ({sc.batch}) to be a multiple of {d}"]
        return []

    def batch_split(self, d):
        return d

    def image_split(self, d):
        return d


STRATEGY = DataParallel()
