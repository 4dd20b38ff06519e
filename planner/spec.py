"""Core descriptions of a diffusion model and of the scenario it runs in.

A model is an ordered list of Blocks, each an ordered list of Ops. An Op carries the
shape a parallel strategy splits (tokens, heads, features, channels, the conv grid), and
derives its FLOPs, bytes moved and parameters from that shape. Strategies never edit
numbers directly: they return a re-shaped Op (see `Op.scaled`) and the cost follows.

All quantities are per sample (batch 1); the cost model multiplies by the local batch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from .memo import per_object

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Plan


class OpKind(str, Enum):
    GEMM = "gemm"          # dense matmul (linear layers, 1x1 convs)
    ATTN = "attn"          # fused scaled-dot-product attention (flash / mem-efficient)
    CONV = "conv"          # k x k (x k) convolution, implicit GEMM
    NORM = "norm"          # layer/group/RMS norm: memory bound
    ELEMWISE = "elemwise"  # activations, residual adds, modulation: memory bound


COMPUTE_KINDS = (OpKind.GEMM, OpKind.ATTN, OpKind.CONV)


@dataclass(frozen=True, slots=True)
class Op:
    """One kernel-sized operation of a denoiser forward pass, for one sample.

    tokens: positions the op produces. Sequence and patch strategies split this.
        GEMM rows, conv output positions (frames*h*w), attention query tokens taken
        from the split (image/video) stream, norm/elementwise rows.
    GEMM: in_features x out_features weight.
    CONV: in_features = in-channels, out_features = out-channels, taps = kernel
        volume, in_tokens = input positions (differs for strided convs).
    ATTN: heads x head_dim; `tokens` and `kv_tokens` count one group's sequence;
        kv_tokens = keys from the split stream (self-attention: equal to tokens;
        cross-attention: 0); ctx_tokens = text keys that every rank holds whole
        (cross-attention text, or the text half of joint attention); q_ctx = text
        queries of joint attention (replicated, not split); groups = independent
        sequences (frames for spatial attention, positions for temporal attention).
    NORM/ELEMWISE: width channels per token, `tensors` full tensors read+written.
    text: the op runs on the text stream (replicated by sequence/patch strategies).
    tp_role: how a Megatron tensor-parallel split treats the op: "col" splits the
        output features (or the heads of attention), "row" splits the input features
        and ends a parallel region with an all-reduce of its output, "rep" leaves it
        whole on every rank (norms, elementwise ops, tiny embeddings).
    """

    name: str
    kind: OpKind
    tokens: int
    in_features: int = 0
    out_features: int = 0
    taps: int = 1
    in_tokens: int = 0
    heads: int = 0
    head_dim: int = 0
    kv_tokens: int = 0
    ctx_tokens: int = 0
    q_ctx: int = 0
    groups: int = 1
    width: int = 0
    tensors: int = 2
    params: int = 0
    text: bool = False
    tp_role: str = "rep"

    # ---- derived cost quantities (per sample) ----
    def flops(self) -> float:
        k = self.kind
        if k is OpKind.GEMM:
            return 2.0 * self.tokens * self.in_features * self.out_features
        if k is OpKind.CONV:
            return 2.0 * self.tokens * self.in_features * self.out_features * self.taps
        if k is OpKind.ATTN:
            q = self.tokens + self.q_ctx
            kv = self.kv_tokens + self.ctx_tokens
            # QK^T and PV, each 2*q*kv*head_dim per head
            return 4.0 * self.groups * self.heads * self.head_dim * q * kv
        if k is OpKind.NORM:
            return 5.0 * self.tokens * self.width
        return 1.0 * self.tokens * self.width * max(1, self.tensors - 1)

    def bytes(self, elem: int) -> float:
        """Bytes read + written from device memory at `elem` bytes per element."""
        k = self.kind
        if k is OpKind.GEMM:
            return elem * (self.tokens * (self.in_features + self.out_features)
                           + self.in_features * self.out_features)
        if k is OpKind.CONV:
            src = self.in_tokens or self.tokens
            return elem * (src * self.in_features + self.tokens * self.out_features
                           + self.taps * self.in_features * self.out_features)
        if k is OpKind.ATTN:
            q = self.tokens + self.q_ctx
            kv = self.kv_tokens + self.ctx_tokens
            # flash attention streams Q, O once and K, V once per query tile
            return elem * self.groups * self.heads * self.head_dim * (2 * q + 2 * kv)
        return elem * self.tokens * self.width * self.tensors

    def out_elems(self) -> int:
        """Elements of the op's output activation (what a stage boundary would carry)."""
        if self.kind in (OpKind.GEMM, OpKind.CONV):
            return self.tokens * self.out_features
        if self.kind is OpKind.ATTN:
            return (self.tokens + self.q_ctx) * self.heads * self.head_dim * self.groups
        return self.tokens * self.width

    def scaled(self, **changes) -> "Op":
        """A re-shaped copy; parameters are re-derived by the caller if needed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Block:
    """A unit the pipeline strategies cut between: a transformer layer, a U-Net
    ResNet/attention block, an embedding or the final projection.

    tokens, hidden: the activation this block emits (its stage-boundary tensor is
    tokens x hidden per sample). skip_elems: extra elements of long skip connections
    still alive after this block (U-Net / U-ViT skips), which a pipeline cut here must
    also carry. attn_layers counts attention ops with K/V that stale-activation methods
    must buffer (self-attention).
    """

    name: str
    kind: str
    ops: tuple[Op, ...]
    tokens: int
    hidden: int
    skip_elems: int = 0
    # derived once from ops (the cost model asks for them per plan and per block)
    _params: int = field(init=False, repr=False, compare=False)
    _self_attn: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_params", sum(o.params for o in self.ops))
        object.__setattr__(self, "_self_attn",
                           tuple(o for o in self.ops if o.kind is OpKind.ATTN and o.kv_tokens > 0))

    @property
    def params(self) -> int:
        return self._params

    def flops(self) -> float:
        """Matmul-class FLOPs (GEMM, conv, attention), the convention of torch's
        FlopCounterMode and of models.csv; norms and elementwise ops are costed by bytes."""
        return sum(o.flops() for o in self.ops if o.kind in COMPUTE_KINDS)

    def self_attn_ops(self) -> tuple[Op, ...]:
        return self._self_attn


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Component:
    """A pipeline component besides the denoiser, run once per image: a text encoder or the
    VAE decoder (diffusers calls these components; "stage" means a pipeline stage here)."""

    name: str
    ops: tuple[Op, ...]
    params: int
    # VAE decoders: the decode runs `tiles` sequential tiles that its ops list merged (so
    # one tile is live at a time), and spatial tiles of tile_px every stride_px pixels
    # when tiling is enabled (diffusers enable_tiling; 0: the class has none)
    tiles: int = 1
    tile_px: int = 0
    stride_px: int = 0

    def flops(self) -> float:
        return sum(o.flops() for o in self.ops if o.kind in COMPUTE_KINDS)


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """Facts about a model id that do not depend on the scenario (from models.csv)."""

    id: str
    name: str
    arch: str                  # unet | dit | mmdit | video-dit | video-mmdit | video-unet
    family: str                # zoo module that builds it
    cfg_default: bool          # classifier-free guidance runs two branches per step
    default_height: int
    default_width: int
    default_frames: int
    default_steps: int
    text_tokens: int           # text tokens the denoiser attends to at default
    vae_spatial: int
    vae_temporal: int          # 1 = image model / per-frame VAE
    latent_channels: int
    patch: int                 # spatial patch size on the latent (1 for U-Nets)
    flow_matching: bool        # rectified flow (Euler) vs epsilon prediction (DDIM)
    factorised_attention: bool = False  # spatial/temporal attention (Latte, STDiT)
    long_skips: bool = False   # U-Net / U-ViT skips that cross pipeline stages
    source: str = ""


@dataclass(frozen=True, slots=True)
class SplitConvention:
    """How the engines that run a denoiser class cut it (planner/legality.py, the caps).

    seq: how a sequence / patch split cuts the image (video) stream:
      "frame_rows": whole patch rows of every frame; rows per frame % slices == 0 (xDiT's
          image DiTs and CogVideoX/Latte reshape with the local height, DistriFusion's patches);
      "tokens": equal chunks of the flattened token sequence; tokens % slices == 0
          (xDiT's HunyuanVideo path, diffusers context parallelism);
      "anything": uneven chunks (cache-dit / diffusers ulysses_anything): no rule, the
          largest shard sets the pace.
    heads: "even" (heads % degree: yunchang's reshape, Megatron TP) or "uneven" (the
      remainder heads go to the first ranks: distrifuser's DistriAttentionTP).
    Costs take the largest shard (ceil) on every split, so uneven splits pay their padding.
    """

    seq: str = "frame_rows"
    heads: str = "even"
    source: str = ""


@dataclass(frozen=True, slots=True)
class EagerInventory:
    """What eager PyTorch runs beyond the zoo's fused op list, measured on the real class
    (tools/eager_inventory.py -> planner/zoo/configs/<id>/eager.json): kernels launched
    per zoo op, and the factor on the memory-bound (norm/elementwise) bytes: fp32 upcasts
    of norm and RoPE chains, unfused modulation, contiguous copies. torch.compile fuses
    them back (the zoo's count; Calibration.compiled_mem_factor for the traffic left)."""

    kernels_per_op: float = 1.0
    mem_factor: float = 1.0
    source: str = ""


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ModelSpec:
    """A model built for one scenario's resolution, frames and text length."""

    facts: ModelFacts
    blocks: tuple[Block, ...]
    text_encoders: tuple[Component, ...]
    vae_decoder: Component
    latent_shape: tuple[int, int, int, int]   # (channels, frames, height, width) of the latent
    tokens: int                               # longest self-attention sequence (image/video stream)
    split: SplitConvention = SplitConvention()
    eager: EagerInventory = EagerInventory()

    @property
    def id(self) -> str:
        return self.facts.id

    @property
    def params(self) -> int:
        return sum(b.params for b in self.blocks)

    def flops(self) -> float:
        """Denoiser matmul-class FLOPs per forward pass, batch 1 (see Block.flops)."""
        return sum(b.flops() for b in self.blocks)

    def attention_heads(self) -> tuple[int, ...]:
        """Distinct head counts of the split stream's attention ops: Ulysses and tensor
        parallelism must divide each (text-only attention, e.g. attention pooling of the
        prompt, runs whole on every rank). Cached: legality asks for every plan."""
        cache = per_object(self)
        if "attention_heads" not in cache:
            cache["attention_heads"] = tuple(sorted({o.heads for b in self.blocks for o in b.ops
                                                     if o.kind is OpKind.ATTN and not o.text}))
        return cache["attention_heads"]

    def frame_rows(self) -> int:
        """Rows of patches of one latent frame."""
        return self.latent_shape[2] // self.facts.patch

    def stream_tokens(self) -> int:
        """Tokens of the image/video stream (frames x rows x columns of patches)."""
        p = self.facts.patch
        return self.latent_shape[1] * (self.latent_shape[2] // p) * (self.latent_shape[3] // p)

    def latent_rows(self) -> int:
        """Rows of patches that sequence/patch strategies split: the latent rows after
        patchify, times the latent frames for video (the token sequence is frame-major, so
        a video splits into whole rows of whole frames)."""
        return self.latent_shape[1] * (self.latent_shape[2] // self.facts.patch)

    def latent_elems(self) -> int:
        c, f, h, w = self.latent_shape
        return c * f * h * w


DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


@dataclass(frozen=True, slots=True)
class Scenario:
    """What the user wants to generate, and how the latency is counted."""

    model: str
    height: int
    width: int
    frames: int = 1
    steps: int = 50
    batch: int = 1
    cfg: bool = True              # two guidance branches per step
    text_tokens: int | None = None  # None: the model's default
    dtype: str = "bf16"
    scope: str = "pipeline"       # pipeline = text encoders + denoise + VAE; denoise = loop only
    compiled: bool = False        # torch.compile / CUDA graphs
    vae_tiling: bool = False      # vae.enable_tiling(): the decode in spatial tiles
    cpu_offload: bool = False     # enable_model_cpu_offload(): one component on the GPU at a time

    @property
    def elem_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def branches(self) -> int:
        """Samples per denoiser evaluation: CFG doubles the batch."""
        return self.batch * (2 if self.cfg else 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class Breakdown:
    """Where a plan's latency goes (seconds), on its critical rank (planner/timeline.py
    summarise). Sums to the latency."""

    compute: float = 0.0
    comm: float = 0.0          # communication not hidden behind compute
    bubble: float = 0.0        # pipeline fill and drain, idle waits, redundant work
    text_encoders: float = 0.0
    vae: float = 0.0
    other: float = 0.0         # per-step scheduler/launch overheads (host)
    warmup: float = 0.0        # synchronous warm-up steps, whole
    comm_dims: dict = field(default_factory=dict)   # comm by parallel dimension

    def total(self) -> float:
        return self.compute + self.comm + self.bubble + self.text_encoders + self.vae + self.other + self.warmup

    def to_dict(self) -> dict:
        return {k: round(getattr(self, k), 6) for k in ("compute", "comm", "bubble", "warmup", "text_encoders",
                                                         "vae", "other")} | {
            "comm_by_dim": {d: round(v, 6) for d, v in sorted(self.comm_dims.items())}}


@dataclass(slots=True)
class MemoryBreakdown:
    """Peak bytes per GPU, by what holds them."""

    weights: float = 0.0
    text_encoders: float = 0.0
    activations: float = 0.0
    buffers: float = 0.0       # stale K/V, stale activations, pipeline patch buffers
    vae: float = 0.0
    runtime: float = 0.0       # CUDA context, allocator slack, NCCL buffers

    def total(self) -> float:
        return self.weights + self.text_encoders + self.activations + self.buffers + self.vae + self.runtime

    def to_dict(self) -> dict:
        return {k: round(v / 2**30, 3) for k, v in dataclasses.asdict(self).items()}


@dataclass(slots=True)
class Prediction:
    """The cost model's answer for one plan on one scenario and cluster."""

    plan: "Plan"
    latency_s: float
    step_s: float                  # steady-state time per denoising step
    serial_latency_s: float
    memory_bytes: float            # peak per GPU (worst rank)
    capacity_bytes: float          # smallest GPU memory among the ranks used
    exact: bool
    breakdown: Breakdown
    memory: MemoryBreakdown
    comm_bytes_per_step: float = 0.0  # bytes one rank sends per steady step
    notes: list[str] = field(default_factory=list)
    timeline: object | None = None   # cost.timeline.Timeline of the first steps, for reports
    stages: tuple[tuple[int, int], ...] = ()   # [first, last) blocks of each pipeline stage/component
    approx_steps: int = 0                      # steps run by approximate strategies (Strategy.fidelity)
    fixed_s: float = 0.0       # compute and host on the critical rank, text encoders, VAE: what no rank order changes
    block_times: str = ""      # what is measured (`profile --model`, planner/cost/measured.py); "" all roofline

    @property
    def speedup(self) -> float:
        return self.serial_latency_s / self.latency_s if self.latency_s > 0 else 0.0

    @property
    def fits(self) -> bool:
        return self.memory_bytes <= self.capacity_bytes

    def to_dict(self) -> dict:
        return {
            "plan": str(self.plan),
            "latency_s": round(self.latency_s, 4),
            "speedup": round(self.speedup, 3),
            "step_s": round(self.step_s, 5),
            "memory_gb_per_gpu": round(self.memory_bytes / 2**30, 2),
            "capacity_gb": round(self.capacity_bytes / 2**30, 2),
            "fits": self.fits,
            "exact": self.exact,
            "approx_steps": self.approx_steps,
            "breakdown": self.breakdown.to_dict(),
            "memory_breakdown_gb": self.memory.to_dict(),
            "comm_bytes_per_step": int(self.comm_bytes_per_step),
            "stages": [list(s) for s in self.stages],
            "notes": list(self.notes),
        } | ({"block_times": self.block_times} if self.block_times else {})
