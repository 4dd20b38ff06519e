"""A diffusers denoiser presented as the executor's ordered block list.

    Denoiser(net, blocks, binding)   a blocks.BlockModel: forward(state, ctx, a, b)
                                     runs blocks [a, b); condition(t, pooled) gives the
                                     conditioning vector of other timesteps; keep_blocks
                                     drops (and frees) the other stages' modules

Each family module (unet.py, sd3.py, flux.py, pixart.py, wan.py, cogvideox.py, latte.py)
builds its blocks with the planner's ModelSpec names and order (planner/zoo), each block
calling the diffusers modules it covers with the ctx bound (hooks.Binding), and declares
which Attention modules attend over the split stream and the tensor-parallel role of each
projection (the same "col" / "row" of the ModelSpec ops; executor/strategies/tp.py slices
by them).

Geometry helpers: a rank holds grid rows [ctx.r0, ctx.r1) of R (patch rows) of every frame,
or frames [ctx.f0, ctx.f1) of F with every row; the full grid is R x (latent width / patch).
"""
from __future__ import annotations

import fnmatch

import torch
from torch import nn

from ..blocks import BlockModel, State
from .hooks import Binding


class Block(nn.Module):
    """One planner block. Subclasses implement run(s, ctx) -> State; `owned` are the dotted
    names of the diffusers modules only this block uses (freed when a stage drops it)."""

    def __init__(self, name: str, den: "Denoiser | None", owned: tuple[str, ...] = ()):
        super().__init__()
        self.block_name, self.owned = name, owned
        object.__setattr__(self, "den", den)     # a reference, not a child module

    def forward(self, s: State, ctx) -> State:
        with self.den.binding.use(ctx, self.text_tokens(s)):
            return self.run(s, ctx)

    def text_tokens(self, s: State) -> int:
        return 0

    def run(self, s: State, ctx) -> State:
        raise NotImplementedError


class Denoiser(BlockModel):
    """The diffusers model `net` (a child, so .to() moves it) behind planner-named blocks."""

    family = ""

    def __init__(self, net: nn.Module, binding: Binding):
        nn.Module.__init__(self)
        self.net, self.binding = net, binding
        self.names: list[str] = []
        self.blocks = nn.ModuleList()
        self.cache: dict = {}          # per-geometry tables (positional embeddings, RoPE)
        self.attention: dict = {}      # Attention module name -> hooks.AttentionHook layout
        self.across_heads: tuple = ()  # q/k norms over all heads (hooks.NormAcrossHeadsHook)

    def add(self, block: Block) -> None:
        object.__setattr__(block, "den", self)
        if not self.names:                      # the embed block computes the conditioning
            object.__setattr__(self, "embed", block)
        self.names.append(block.block_name)
        self.blocks.append(block)

    def condition(self, t: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        return self.embed.condition(t, pooled)

    def keep_blocks(self, start: int, stop: int) -> None:
        """Drop every block outside [start, stop) and free the diffusers modules it owned."""
        for i in range(len(self.blocks)):
            if not start <= i < stop and isinstance(self.blocks[i], Block):
                for name in self.blocks[i].owned:
                    parent, _, leaf = name.rpartition(".")
                    setattr(self.net.get_submodule(parent) if parent else self.net, leaf, nn.Identity())
                self.blocks[i] = nn.Identity()

    def cached(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


# ---------------------------------------------------------------- helpers for the families
def set_roles(net: nn.Module, roles: dict[str, str | tuple]) -> None:
    """tp_role (and tp_blocks for packed projections) from {module-name pattern: role}."""
    for name, m in net.named_modules():
        for pat, role in roles.items():
            if fnmatch.fnmatchcase(name, pat):
                m.tp_role, blocks = (role, None) if isinstance(role, str) else role
                if blocks is not None:
                    m.tp_blocks = blocks(m) if callable(blocks) else blocks
                break


def mark_heads(net: nn.Module) -> None:
    """Attention modules keep their local head count under TP (processors reshape by it)."""
    from diffusers.models.attention import AttentionModuleMixin
    from diffusers.models.attention_processor import Attention
    for m in net.modules():
        if isinstance(m, (Attention, AttentionModuleMixin)) and hasattr(m, "heads"):
            m.tp_divide = ("heads",)


def name_modules(net: nn.Module) -> None:
    """Stable per-layer keys (stale K/V buffers, halo tables)."""
    for name, m in net.named_modules():
        m.lid = name


def unpatchify(x: torch.Tensor, rows: int, p: int, ch: int) -> torch.Tensor:
    """[B, rows*cols, p*p*ch] tokens (row-major, channels last per patch) -> [B, ch, rows*p, cols*p]."""
    b, n, _ = x.shape
    cols = n // rows
    x = x.reshape(b, rows, cols, p, p, ch)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(b, ch, rows * p, cols * p)


def row_slice(pos: torch.Tensor, ctx, cols: int) -> torch.Tensor:
    """Tokens of grid rows [ctx.r0, ctx.r1) of a [1, R*cols, D] row-major table."""
    return pos[:, ctx.r0 * cols:ctx.r1 * cols]


def patch_pos_embed(pe, rows: int, cols: int, device) -> torch.Tensor:
    """diffusers PatchEmbed's positional table for the whole R x cols grid, [1, R*cols, D]
    (SD3's cropped table, or PixArt's sin-cos at its base size and interpolation scale)."""
    from diffusers.models.embeddings import get_2d_sincos_pos_embed
    if pe.pos_embed_max_size:
        return pe.cropped_pos_embed(rows * pe.patch_size, cols * pe.patch_size)
    if (pe.height, pe.width) == (rows, cols):
        return pe.pos_embed
    return get_2d_sincos_pos_embed(pe.pos_embed.shape[-1], (rows, cols), base_size=pe.base_size,
                                   interpolation_scale=pe.interpolation_scale, device=device,
                                   output_type="pt").float().unsqueeze(0)


def patch_embed_rows(den: Denoiser, pe, lat: torch.Tensor, ctx) -> torch.Tensor:
    """PatchEmbed of this rank's rows: the conv on the slice, the whole grid's positional
    table sliced to its rows (PatchEmbed.forward would build a table for the slice alone)."""
    x = pe.proj(lat).flatten(2).transpose(1, 2)
    if pe.norm is not None:
        x = pe.norm(x)
    if pe.pos_embed is None:
        return x
    cols = lat.shape[-1] // pe.patch_size
    pos = den.cached(("pos", ctx.R, cols, str(x.device)), lambda: patch_pos_embed(pe, ctx.R, cols, x.device))
    return (x + row_slice(pos, ctx, cols).to(x.device)).to(x.dtype)
