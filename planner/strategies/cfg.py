"""cfg: classifier-free guidance branches on separate GPU groups (xDiT cfg parallel,
Hybridiff's condition-based partitioning).

The conditional and unconditional passes of every step run on two groups, each holding
the whole model. After each step the two noise predictions are all-gathered (a
latent-sized tensor) so both groups can apply the guidance and the scheduler update.
Exact. Only for models that run two guidance branches (not guidance-distilled ones).
"""
from .base import AFTER_STEP, Comm, Strategy


class CfgParallel(Strategy):
    key = "cfg"
    plan_rank = 0
    splits = "the two classifier-free-guidance branches"
    layout_rank = 12
    collectives = frozenset({"all_gather"})

    def cap(self, model, sc):
        return 2 if sc.cfg else 1

    def check(self, d, plan, model, sc):
        errs = []
        if d != 2:
            errs.append(f"cfg={d}: the CFG degree is 1 or 2 (two guidance branches)")
        if not sc.cfg:
            errs.append(f"cfg=2 needs classifier-free guidance, but {model.id} runs without it here"
                        + ("" if model.facts.cfg_default else " (guidance-distilled model)"))
        return errs

    def batch_split(self, d):
        return d

    def step_comm(self, d, plan, model, local):
        # all-gather of the noise prediction: output holds both branches
        nbytes = model.latent_elems() * local.batch * d * local.elem
        return [Comm("all_gather", "cfg", nbytes, AFTER_STEP, what="noise prediction")]


STRATEGY = CfgParallel()
