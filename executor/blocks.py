"""What the strategies see of a denoiser: an ordered list of blocks, the State that flows
between them, and the text conditioning of the CFG branches.

    State          what one block hands the next (and a pipeline stage sends on)
    BlockModel     a denoiser as blocks: forward(state, ctx, a, b) runs blocks [a, b)
    Conditioning   text embeddings (and pooled text) of the prompt and the negative prompt

Every model is a list of blocks with the same names and order as its ModelSpec (the zoo's
builders on the same configs), so a pipeline cut after block i means the same thing to the
planner and to the executor; what crosses a stage boundary is exactly State.tensors().
executor/diffusers/denoiser.py presents each diffusers class this way.

Layers never talk to other ranks themselves: whatever needs the rest of the image or the
other tensor-parallel ranks goes through `ctx` (executor/context.py). Serially `ctx` is the
identity, so one model serves every plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class State:
    """What one block hands the next. Inputs (latent, t, text, pooled) are read by the
    embed block; x / txt / c / skips are the activations a pipeline stage sends on."""

    latent: torch.Tensor | None = None   # [B, C, (F,) rows, W] this rank's slice of the noisy latent
    t: torch.Tensor | None = None        # [B] model timesteps
    text: torch.Tensor | None = None     # [B, T, text_dim] text embeddings
    pooled: torch.Tensor | None = None   # [B, pooled_dim] pooled text (SD3, Flux, SDXL)
    x: torch.Tensor | None = None        # image stream
    txt: torch.Tensor | None = None      # text stream (joint attention), projected caption, raw text
    c: torch.Tensor | None = None        # conditioning vector(s) from the timestep
    skips: list = field(default_factory=list)   # U-Net long skips still on the stack

    def tensors(self) -> list[torch.Tensor]:
        return [self.x, self.txt, self.c, *self.skips]

    @staticmethod
    def from_tensors(ts: list[torch.Tensor], t: torch.Tensor | None = None) -> "State":
        return State(t=t, x=ts[0], txt=ts[1], c=ts[2], skips=list(ts[3:]))


class BlockModel(nn.Module):
    """A denoiser as an ordered list of blocks. forward(state, ctx, a, b) runs blocks [a, b)."""

    def __init__(self, names: list[str], blocks: list[nn.Module]):
        super().__init__()
        self.names = names
        self.blocks = nn.ModuleList(blocks)

    def forward(self, s: State, ctx, start: int = 0, stop: int | None = None) -> State:
        stop = len(self.blocks) if stop is None else stop
        for i in range(start, stop):
            s = self.blocks[i](s, ctx)
        return s

    def condition(self, t: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        """The conditioning vector for timesteps t (what the embed block puts in State.c).
        Methods that feed a block a stale input (AsyncDiff, Hybridiff) refresh it with this."""
        return self.blocks[0].condition(t, pooled)

    def keep_blocks(self, start: int, stop: int) -> None:
        """Drop the weights of blocks outside [start, stop): a pipeline stage holds its own."""
        for i in range(len(self.blocks)):
            if not start <= i < stop:
                self.blocks[i] = nn.Identity()


@dataclass
class Conditioning:
    """Text embeddings of the prompt (cond) and of the negative prompt (uncond)."""

    cond: torch.Tensor            # [T, text_dim]
    uncond: torch.Tensor
    cond_pooled: torch.Tensor | None = None     # [pooled_dim]
    uncond_pooled: torch.Tensor | None = None

    def batch(self, branches: tuple[str, ...], images: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text (and pooled) for `images` images of each branch, branch-major."""
        text = torch.cat([(self.cond if b == "cond" else self.uncond)[None].expand(images, -1, -1)
                          for b in branches])
        if self.cond_pooled is None:
            return text, None
        pooled = torch.cat([(self.cond_pooled if b == "cond" else self.uncond_pooled)[None].expand(images, -1)
                            for b in branches])
        return text, pooled
