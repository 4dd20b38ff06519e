"""What a parallel strategy declares, so that the cost model and the executor can share it.

A strategy is one plan key (`cfg`, `ulysses`, `pipefusion`, ...). It says:
- what it splits (`shard`: how one rank's ops shrink), and its constraints (`check`);
- the communication it adds per block and per step (`layer_comm`, `step_comm`), each as a
  `Comm` naming the collective, the parallel group, the bytes, and what it overlaps with;
- its extra memory (`buffer_bytes`) and how it shards weights (`weight_split`);
- its warm-up and whether its output is exact.
Strategies that change the order of work over blocks or steps (pipelines, step
parallelism) also own a `driver` (planner/cost/drivers.py) that turns per-block costs
into the denoising time with a per-rank timeline.

All hooks are pure functions of their arguments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import Plan
    from ..spec import Block, ModelSpec, Scenario


@dataclass(frozen=True, slots=True)
class Shard:
    """How one rank's share of a denoiser evaluation is cut, as divisors.

    seq: image/video-stream tokens of token-wise ops (GEMM rows, conv positions, norms).
    q, kv: attention queries and keys of the split stream.
    heads: attention heads. features: GEMM/conv output (col) or input (row) features.
    groups: independent attention sequences (frames for spatial attention).
    Text-stream ops are never split by seq, q or kv (every rank keeps the text whole).
    """

    seq: int = 1
    q: int = 1
    kv: int = 1
    heads: int = 1
    features: int = 1
    groups: int = 1

    def __mul__(self, o: "Shard") -> "Shard":
        return Shard(self.seq * o.seq, self.q * o.q, self.kv * o.kv, self.heads * o.heads,
                     self.features * o.features, self.groups * o.groups)


NO_SHARD = Shard()

# Where a communication's time can hide.
BLOCKING = "blocking"      # nothing runs until it completes (Ulysses all-to-all, TP all-reduce)
IN_ATTENTION = "attention" # overlaps the attention kernels of its block (Ring's K/V passes)
IN_STEP = "step"           # asynchronous, hidden under the rest of the step (DistriFusion)
AFTER_STEP = "after_step"  # once per step, between steps (CFG gather of the noise prediction)


@dataclass(frozen=True, slots=True)
class Comm:
    """One collective a rank takes part in: `count` times `kind` over `dim`'s group."""

    kind: str          # all_reduce | all_gather | all_to_all | broadcast | p2p | reduce_scatter
    dim: str           # plan key whose groups it runs over
    nbytes: float      # per call, in the convention of planner/cost/comm.py
    overlap: str = BLOCKING
    count: int = 1
    what: str = ""


class Strategy:
    """Base class: a strategy that splits nothing and sends nothing (serial)."""

    key: str = "serial"
    exact: bool = True
    # How far the output can drift from one GPU's: "exact"; "near" (stale activations
    # refreshed every step: PipeFusion, DistriFusion); "approx" (whole network evaluations
    # reused, skipped or iterated to a tolerance: AsyncDiff, ParaStep, Hybridiff's window,
    # ParaDiGMS, naive patches). Steps run by "approx" strategies count
    # against the user's --approx-steps budget.
    fidelity: str = "exact"
    recommend: bool = True             # baselines are evaluated on request only
    splits: str = "nothing"
    default_warmup: int = 0
    # Degree keys it may be combined with (besides itself). Checked by the search and by
    # planner/legality.py for user plans.
    combines_with: frozenset[str] = frozenset()
    driver: str | None = None          # name in planner/cost/drivers.py, or None (layer-wise)

    # ---- legality
    def check(self, d: int, plan: "Plan", model: "ModelSpec", sc: "Scenario") -> list[str]:
        return []

    # ---- compute
    def shard(self, d: int, plan: "Plan") -> Shard:
        return NO_SHARD

    def batch_split(self, d: int) -> int:
        """Divisor of the samples (CFG branches x batch) one rank evaluates."""
        return 1

    # ---- communication
    def layer_comm(self, d: int, plan: "Plan", block: "Block", local: "Local") -> Iterable[Comm]:
        return ()

    def step_comm(self, d: int, plan: "Plan", model: "ModelSpec", local: "Local") -> Iterable[Comm]:
        return ()

    # ---- memory
    def weight_split(self, d: int) -> int:
        """Divisor of the denoiser weights each rank holds (pipelines: see their driver)."""
        return 1

    def buffer_bytes(self, d: int, plan: "Plan", model: "ModelSpec", local: "Local") -> float:
        return 0.0

    # ---- warm-up
    def warmup(self, plan: "Plan") -> int:
        return int(plan.get("warmup", self.default_warmup)) if self.default_warmup or plan.has("warmup") else 0

    def gpus(self, d: int, plan: "Plan") -> int:
        return d

    def approx_steps(self, d: int, plan: "Plan", steps: int) -> int:
        """Denoising steps whose output is approximate in the "approx" sense."""
        return max(0, steps - self.warmup(plan)) if self.fidelity == "approx" else 0


@dataclass(frozen=True, slots=True)
class Local:
    """What one rank evaluates per denoiser call: samples and the combined shard."""

    batch: float          # samples (CFG branches x images) in one call on this rank
    shard: Shard
    elem: int             # bytes per element of the planned dtype
    tp: int = 1           # tensor-parallel degree (features and heads)
    sp: int = 1           # sequence split of the image stream (ulysses x ring x patches)
    latent: tuple[int, int, int] = (1, 1, 1)   # latent frames, rows, columns (conv halos)


# ---------------------------------------------------------------- shared byte counts
def self_attention_kv_bytes(block: "Block", local: Local, full: bool) -> float:
    """K and V of the split stream in `block`'s self-attention, per rank.

    full=True: the whole sequence (what a stale K/V buffer or an all-gather output holds);
    full=False: this rank's slice of it. Heads are cut by tensor parallelism only.
    """
    total = 0.0
    for op in block.self_attn_ops():
        tokens = op.kv_tokens if full else op.kv_tokens / local.shard.seq
        total += 2 * op.groups * tokens * op.heads / local.tp * op.head_dim
    return total * local.batch * local.elem


def activation_bytes(block: "Block", local: Local) -> float:
    """The block's output activation on one rank (its slice of the image stream)."""
    return block.tokens / local.shard.seq * block.hidden * local.batch * local.elem
