"""DiTTransformer2DModel (dit-xl-2) as planner blocks (planner/zoo/dit.py dit): embed,
block0 .., final.

Class-conditioned, no text encoder: DiTPipeline embeds an ImageNet class label, and the
unconditional branch is the null class (num_embeds_ada_norm, 1000). The label travels
as the pooled conditioning, one-hot over the 1001 embeddings (exact in every dtype; a
label like 999 is not a bf16 number); State.c = [timestep | one-hot label], so every
stage (and AsyncDiff's / Hybridiff's other timesteps, Denoiser.condition) can rebuild
each block's own adaLN-zero embedding from it.

embed  PatchEmbed of this rank's rows + the whole grid's sin-cos table
block  BasicTransformerBlock (ada_norm_zero): its norm1 embeds timestep and label itself
       (diffusers gives every block its own CombinedTimestepLabelEmbeddings);
       self-attention over the split stream, no cross-attention
final  block 0's embedding -> proj_out_1 shift/scale, norm_out, proj_out_2, unpatchify of
       this rank's rows; the learned variance channels (out 8 = 2 x 4) are dropped, as
       DiTPipeline does
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .denoiser import Block, Denoiser, mark_heads, patch_embed_rows, set_roles, unpatchify

ROLES = {f"transformer_blocks.*.{n}": "col" for n in ("attn1.to_q", "attn1.to_k", "attn1.to_v", "ff.net.0.proj")}
ROLES |= {f"transformer_blocks.*.{n}": "row" for n in ("attn1.to_out.0", "ff.net.2")}


def label_of(prompt: str, classes: int = 1000) -> int:
    """DiTPipeline takes class ids: a prompt that is a number 0..classes-1 is that class;
    any other prompt picks one deterministically (CRC-32 of its bytes), so different
    prompts give different images with random weights."""
    import zlib
    text = prompt.strip()
    if text.isdigit() and int(text) < classes:
        return int(text)
    return zlib.crc32(text.encode()) % classes


def one_hot(label: int, classes: int = 1000) -> torch.Tensor:
    """[classes + 1] with a 1 at `label` (classes = the null class)."""
    v = torch.zeros(classes + 1)
    v[label] = 1.0
    return v


def _labels(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """State.c -> (timesteps [B], class labels [B] long)."""
    return c[:, 0], c[:, 1:].argmax(dim=-1)


class Embed(Block):
    def condition(self, t, pooled):
        return torch.cat([t[:, None].to(pooled.dtype), pooled], dim=-1)

    def run(self, s, ctx):
        s.x = patch_embed_rows(self.den, self.den.net.pos_embed, s.latent, ctx)
        s.c = self.condition(s.t, s.pooled)
        s.txt = s.text              # no text: the (empty) conditioning rides along unchanged
        return s


class Layer(Block):
    def __init__(self, name, den, i, owned):
        super().__init__(name, den, owned)
        self.i = i

    def run(self, s, ctx):
        t, labels = _labels(s.c)
        s.x = self.den.net.transformer_blocks[self.i](s.x, timestep=t, class_labels=labels)
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        t, labels = _labels(s.c)
        cond = net.transformer_blocks[0].norm1.emb(t, labels, hidden_dtype=s.x.dtype)
        shift, scale = net.proj_out_1(F.silu(cond)).chunk(2, dim=1)
        x = net.proj_out_2(net.norm_out(s.x) * (1 + scale[:, None]) + shift[:, None])
        out = unpatchify(x, ctx.r1 - ctx.r0, net.config.patch_size, net.out_channels)
        s.x = out[:, :net.config.in_channels]      # learned variance dropped
        return s


def build(net, binding) -> Denoiser:
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.add(Embed("embed", den, ("pos_embed",)))
    for i in range(len(net.transformer_blocks)):
        den.add(Layer(f"block{i}", den, i, _owned(net, i)))
        den.attention[f"transformer_blocks.{i}.attn1"] = None
    den.add(Final("final", den, ("proj_out_1", "proj_out_2")))
    return den


def _owned(net, i: int) -> tuple[str, ...]:
    """Block i's modules; block 0 keeps its timestep + label embedder for the head."""
    if i:
        return (f"transformer_blocks.{i}",)
    first = net.transformer_blocks[0]
    kids = tuple(f"transformer_blocks.0.{n}" for n, m in first.named_children() if n != "norm1" and m is not None)
    return kids + ("transformer_blocks.0.norm1.linear",)


def class_forward(net, latent, t, text, pooled) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it)."""
    out = net(latent, timestep=t, class_labels=pooled.argmax(dim=-1), return_dict=False)[0]
    return out[:, :net.config.in_channels]


# ---------------------------------------------------------------- DiTPipeline's conditioning and decode
def encode(pipeline, prompt: str, negative: str = ""):
    """The class label of the prompt, and the null class for the unconditional branch
    (DiTPipeline ignores negative prompts: its CFG always uses the null class). There is
    no text: a 1 x 1 zero stands in for it."""
    from ..blocks import Conditioning
    classes = pipeline.configs.config(pipeline.configs.denoiser).get("num_embeds_ada_norm", 1000)
    none = torch.zeros(1, 1, dtype=pipeline.dtype, device=pipeline.device)
    cond, null = (one_hot(k, classes).to(pipeline.device, pipeline.dtype) for k in (label_of(prompt, classes), classes))
    return Conditioning(none, none.clone(), cond, null)


@torch.no_grad()
def decode(pipeline, latent):
    """DiTPipeline: latents / scaling_factor -> vae.decode -> (x / 2 + 0.5) clamped."""
    from .pipeline import uint8
    vae = pipeline.pipe.vae
    z = latent.to(pipeline.device, next(vae.parameters()).dtype) / vae.config.scaling_factor
    return uint8((vae.decode(z, return_dict=False)[0] / 2 + 0.5).clamp(0, 1), video=False)
