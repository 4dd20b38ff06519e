"""Constraint checks shared by several strategies."""
from __future__ import annotations

import math

from ..spec import OpKind
from .base import Comm

# what a row split of a convolutional block exchanges (spatial_comms)
SPATIAL_COLLECTIVES = frozenset({"p2p", "all_reduce"})


def head_cap(model, uneven: bool = False) -> int:
    """Head-splitting degrees (Ulysses, TP) must divide every attention head count; where
    the model's engines split heads unevenly (SplitConvention.heads), up to the most heads."""
    heads = model.attention_heads()
    if not heads:
        return 1
    return max(heads) if uneven else math.gcd(*heads)


def heads_uneven(model) -> bool:
    return model.split.heads == "uneven"


def row_cap(model) -> int:
    """The most slices a sequence or patch split can make (the model's SplitConvention):
    a frame's rows of patches, or the stream's tokens."""
    return model.frame_rows() if model.split.seq == "frame_rows" else model.stream_tokens()


def split_errors(n: int, plan, model) -> list[str]:
    """Is an n-way sequence/patch split (all of the plan's row splits at once,
    planner/legality.py) legal under the model's SplitConvention? Each refusal names the
    engine rule (its source is on the convention)."""
    conv = model.split
    if conv.seq == "frame_rows":
        rows = model.frame_rows()
        if rows % n:
            return [f"the engines split {model.id} by whole patch rows of each frame (rows % slices == 0; "
                    f"{conv.source}): {rows} rows per frame do not divide into {n} slices ({plan}); "
                    f"change the height or the degrees"]
    elif conv.seq == "tokens":
        tokens = model.stream_tokens()
        if tokens % n:
            return [f"the engines split {model.id}'s flattened sequence into equal chunks (tokens % slices == 0; "
                    f"{conv.source}): {tokens} tokens do not divide into {n} ({plan})"]
    return []


def stale_steps(plan, sc, key: str, warmup: int) -> list[str]:
    """Stale-activation methods need steps left after their synchronous warm-up."""
    if warmup >= sc.steps:
        return [f"{key}: warmup={warmup} leaves no asynchronous step out of {sc.steps}"]
    return []


def spatial_comms(key: str, block, local, overlap: str) -> list:
    """What a row split of a convolutional block adds (U-Nets): every k x k convolution
    needs the boundary rows of its neighbours' slices (a halo exchange, one row each
    side for 3x3), and every GroupNorm needs statistics over the whole image (an
    all-reduce of per-group sums). The executor's spatial layers do exactly this;
    transformer blocks have neither (their norms are per token)."""
    def overlaps(o) -> bool:
        """A kernel wider than its stride reads rows of the neighbouring slice (a 3x3 conv
        does; a DiT's 2x2 stride-2 patch embedding does not)."""
        side = math.sqrt(o.taps)
        stride = math.sqrt(max((o.in_tokens or o.tokens) / max(o.tokens, 1), 1.0))
        return side > stride + 1e-9

    convs = [o for o in block.ops if o.kind is OpKind.CONV and o.taps > 1 and not o.text and overlaps(o)]
    if not convs:
        return []
    frames, h, w = local.latent
    out = []
    for o in convs:
        src = o.in_tokens or o.tokens
        row = math.sqrt(max(src / max(frames, 1), 1.0) * w / h)       # positions in one row
        halo = 2 * frames * row * o.in_features * local.batch * local.elem
        out.append(Comm("p2p", key, halo, overlap, what="conv halo rows"))
    norms = sum(1 for o in block.ops if o.kind is OpKind.NORM and not o.text)
    if norms:
        stats = 2 * 32 * 4 * local.batch          # sum and sum of squares of 32 groups, fp32
        out.append(Comm("all_reduce", key, stats, overlap, count=norms, what="GroupNorm statistics"))
    return out
