"""tp: Megatron-style tensor parallelism.

QKV and MLP-up projections (and the first conv of a ResNet) split their output
features ("col"), attention splits its heads, and the following projection splits its
input features ("row") and all-reduces its output: about two blocking all-reduces of a
full activation per transformer layer. Weights are sharded 1/t; activations are not.
Exact. Loses on diffusion models because their activations are large (methods.md (2)).
"""
from .base import BLOCKING, Comm, Shard, Strategy
from .checks import head_cap, heads_uneven


class TensorParallel(Strategy):
    key = "tp"
    plan_rank = 5
    combines_with = "cfg dp pipefusion ulysses ring"
    splits = "weights (features and heads)"
    layout_rank = 0
    collectives = frozenset({"all_reduce"})

    def cap(self, model, sc):
        return head_cap(model, heads_uneven(model))

    def check(self, d, plan, model, sc):
        # where the engine gives the remainder heads to the first ranks (SplitConvention),
        # any degree up to the most heads runs; the slowest rank's ceil(heads / d) is costed
        if heads_uneven(model):
            if d > max(model.attention_heads(), default=1):
                return [f"tp={d} exceeds the {max(model.attention_heads())} attention heads of {model.id}"]
            return []
        bad = [h for h in model.attention_heads() if h % d]
        if bad:
            return [f"tp={d} must divide the attention head counts {list(model.attention_heads())} of {model.id} "
                    f"(Megatron-style split of whole heads per rank)"]
        return []

    def shard(self, d, plan):
        return Shard(features=d, heads=d)

    def weight_split(self, d):
        return d

    def layer_comm(self, d, plan, block, local):
        nbytes = 0.0
        calls = 0
        for op in block.ops:
            if op.tp_role == "row":
                tokens = op.tokens if op.text else op.tokens / local.shard.seq
                nbytes += tokens * op.out_features * local.batch * local.elem
                calls += 1
        if not calls:
            return ()
        return [Comm("all_reduce", "tp", nbytes / calls, BLOCKING, count=calls, what="row-parallel all-reduce")]


STRATEGY = TensorParallel()
