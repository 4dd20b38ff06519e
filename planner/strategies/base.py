"""What a parallel strategy declares, so that the cost model and the executor can share it.

A strategy is one plan key (`cfg`, `ulysses`, `pipefusion`, ...). It says:
- what it splits (`shard`: how one rank's ops shrink), and its constraints (`check`);
- the communication it adds per block and per step (`layer_comm`, `step_comm`), each as a
  `Comm` naming the collective, the parallel group, the bytes, and what it overlaps with;
- its extra memory (`buffer_bytes`) and how it shards weights (`weight_split`);
- its warm-up and whether its output is exact.
Strategies that change the order of work over blocks or steps (pipelines, step
parallelism) also own the denoising loop (`owns_loop`, `loop`): they turn per-block
costs into the loop's time with a per-rank timeline.

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
    kv_chunks: the keys one attention call sees are kv / kv_chunks (Ring attends to one
    K/V block at a time; the kernel's efficiency depends on that length).
    Text-stream ops are never split by seq, q or kv (every rank keeps the text whole).
    """

    seq: int = 1
    q: int = 1
    kv: int = 1
    heads: int = 1
    features: int = 1
    groups: int = 1
    kv_chunks: int = 1

    def __mul__(self, o: "Shard") -> "Shard":
        return Shard(self.seq * o.seq, self.q * o.q, self.kv * o.kv, self.heads * o.heads,
                     self.features * o.features, self.groups * o.groups, self.kv_chunks * o.kv_chunks)


NO_SHARD = Shard()

# Where a communication's time can hide.
BLOCKING = "blocking"      # nothing runs until it completes (Ulysses all-to-all, TP all-reduce)
IN_ATTENTION = "attention" # overlaps the attention kernels of its block (Ring's K/V passes)
IN_STEP = "step"           # asynchronous, hidden under the rest of the step (DistriFusion)
AFTER_STEP = "after_step"  # once per step, between steps (CFG gather of the noise prediction)


@dataclass(frozen=True, slots=True)
class Comm:
    """One collective a rank takes part in: `count` times `kind` over `dim`'s group.

    copy_bytes: device-memory bytes (read + written) of the layout kernels each call needs
    on the rank's own GPU (the permute + contiguous before and after an all-to-all, Ring's
    fp32 output merge): memory-bound work on the compute stream, whatever `overlap` says of
    the transfer. kernels: what the host issues per call (the collective and those kernels).
    """

    kind: str          # all_reduce | all_gather | all_to_all | broadcast | p2p | reduce_scatter
    dim: str           # plan key whose groups it runs over
    nbytes: float      # per call, in the convention of planner/cost/comm.py
    overlap: str = BLOCKING
    count: int = 1
    what: str = ""
    copy_bytes: float = 0.0
    kernels: int = 1


@dataclass(frozen=True, slots=True)
class Modifier:
    """A plan key that tunes the strategies owning it (`patches`, `warmup`, `stride`, `k`).
    The owners are collected from the strategies' `modifiers` (planner/strategies)."""

    key: str
    minimum: int = 1
    owners: tuple[str, ...] = ()


class Strategy:
    """Base class: a strategy that splits nothing and sends nothing (serial).

    Traits, declared once here and read by the plan grammar, the layout, the search, the
    calibration and the executor (planner/strategies/__init__.py derives every list):
    """

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
    plan_rank: int = -1                # where its key prints in a plan string (cfg, dp, pipefusion, ...)
    # The keys earlier in plan order that it may share a plan with (one home per pair:
    # the later strategy; planner/strategies PAIRS is the symmetric relation)
    combines_with: str = ""
    # xDiT's process-group order, inner (consecutive ranks) to outer (xdit.md (a)): tp, sp
    # (ulysses inside ring), pp, cfg, dp; the others slot in beside the kind they resemble
    layout_rank: int = 0
    # What a rank holds of the latent between steps: "rows" (a slice of the image's patch
    # rows, frame-major for video), "frames" (whole frames or positions: DSP), or None (all)
    latent_split: str | None = None
    modifiers: tuple[Modifier, ...] = ()   # the modifier keys it owns
    collectives: frozenset[str] = frozenset()   # kinds of collective it issues (calibration)
    overlaps_compute: bool = False     # some of its communication hides under compute
    owns_loop: bool = False            # reorders work over blocks or steps: has `loop`
    stage_cuts: bool = False           # its loop cuts the blocks into stages/components
    stage_weights: bool = False        # a stage holds only its own blocks' weights
    # Switching schedules (planner/ilp/schedule_modes.py): a strategy whose run is a window
    # of steps inside another plan names the modifier that sets the window's length
    window_modifier: str | None = None
    in_segments: bool = True           # False: one run spans the whole trajectory (no segment)

    # ---- legality
    def check(self, d: int, plan: "Plan", model: "ModelSpec", sc: "Scenario") -> list[str]:
        return []

    def entered_from(self, plan: "Plan") -> "Plan | None":
        """The plan a window of this strategy must open out of (None: any)."""
        return None

    def segment_errors(self, seg, plan: "Plan") -> list[str]:
        """Why a step segment of `plan` that runs this strategy cannot stand where it is:
        a window longer than its segment, or not opened out of the plan it must follow."""
        errs = []
        length = seg.plan.get(self.window_modifier) if self.window_modifier else None
        if length is not None and length > seg.steps:
            errs.append(f"schedule segment '{seg}': {self.key} {self.window_modifier}={length} must be at most the "
                        f"segment's {seg.steps} step{'s' if seg.steps > 1 else ''}")
        before = self.entered_from(seg.plan)
        if before is not None and (seg.first == 1 or plan.plan_at(seg.first - 1) != before):
            where = "it cannot start at step 1" if seg.first == 1 else f"step {seg.first - 1} must run '{before}'"
            errs.append(f"schedule segment '{seg}': the {self.key} window opens out of '{before}', so {where}")
        return errs

    # ---- search
    def cap(self, model: "ModelSpec", sc: "Scenario") -> int | None:
        """The largest degree that can ever be legal here (None: no bound but the GPUs)."""
        return None

    def variants(self, degrees: dict[str, int]) -> Iterable[dict[str, int]] | None:
        """Plan items the search tries for these degrees (changes merged into them).
        Default: the degrees as they are. An empty iterable drops the factorisation."""
        return None

    # ---- compute
    def shard(self, d: int, plan: "Plan") -> Shard:
        return NO_SHARD

    def batch_split(self, d: int) -> int:
        """Divisor of the samples (CFG branches x batch) one rank evaluates."""
        return 1

    def image_split(self, d: int) -> int:
        """Divisor of the images one rank holds at the end (and decodes with the VAE)."""
        return 1

    def row_slices(self, d: int, plan: "Plan") -> int:
        """Into how many row slices it cuts the latent at once (a pipeline's patches too)."""
        return d if self.latent_split == "rows" else 1

    # ---- communication
    def layer_comm(self, d: int, plan: "Plan", block: "Block", local: "Local") -> Iterable[Comm]:
        return ()

    def step_comm(self, d: int, plan: "Plan", model: "ModelSpec", local: "Local") -> Iterable[Comm]:
        return ()

    def leave_comm(self, d: int) -> str | None:
        """The collective that hands every rank the whole latent when another plan takes
        over between steps (a switching schedule): None when every rank holds it already."""
        return "all_gather" if self.latent_split else None

    # ---- memory
    def weight_split(self, d: int) -> int:
        """Divisor of the denoiser weights each rank holds (pipelines: see their loop)."""
        return 1

    def buffer_bytes(self, d: int, plan: "Plan", model: "ModelSpec", local: "Local") -> float:
        return 0.0

    # ---- warm-up
    def warmup(self, plan: "Plan") -> int:
        return int(plan.get("warmup", self.default_warmup)) if self.default_warmup or plan.has("warmup") else 0

    def gpus(self, d: int, plan: "Plan") -> int:
        return d

    def block_calls(self, d: int, plan: "Plan") -> float:
        """Calls of each block a rank holds per step, over the whole model's blocks: its
        per-block communication happens this often relative to a layer-wise plan."""
        return 1.0

    def round_steps(self, d: int, plan: "Plan") -> int:
        """Steps one round of its loop finishes (AsyncDiff's stride, ParaStep's degree):
        a run's cost grows by a round every that many steps."""
        return 1

    def approx_steps(self, d: int, plan: "Plan", steps: int) -> int:
        """Denoising steps whose output is approximate in the "approx" sense."""
        return max(0, steps - self.warmup(plan)) if self.fidelity == "approx" else 0


# The modifier every stale-activation and step-parallel method owns (0: no warm-up)
WARMUP = Modifier("warmup", minimum=0)


@dataclass(frozen=True, slots=True)
class Local:
    """What one rank evaluates per denoiser call: samples and the combined shard."""

    batch: float          # samples (CFG branches x images) in one call on this rank
    shard: Shard
    elem: int             # bytes per element of the planned dtype
    tp: int = 1           # tensor-parallel degree (features and heads)
    sp: int = 1           # sequence split of the image stream (ulysses x ring x patches)
    latent: tuple[int, int, int] = (1, 1, 1)   # latent frames, rows, columns (conv halos)
    # the sequence split cuts every frame by rows (SplitConvention "frame_rows"), so a rank
    # holds all frames of its rows: temporal attention (Latte) needs nothing from the others
    frame_split: bool = True


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
