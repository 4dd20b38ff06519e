"""UNet2DConditionModel (sd1.5, sd2.1, sdxl) as planner blocks (planner/zoo/unet.py _UNet):

    embed, down{i}.res{j}, down{i}.attn{j}[.layer{k}], down{i}.downsample, mid.res0,
    mid.attn[.layer{k}], mid.res1, up{i}.res{j}, up{i}.attn{j}[.layer{k}], up{i}.upsample, final

embed       time (+ SDXL's pooled-text and size-id) embedding (State.c), conv_in
res         ResnetBlock2D (up blocks first concatenate the newest long skip)
attn        one BasicTransformerBlock of a Transformer2DModel; its first layer also opens
            the model (GroupNorm, proj_in) and pushes the input for the closing residual,
            its last closes it (proj_out, + input); single-layer models are one block
down / up   Downsample2D (3x3 stride-2 conv) / Upsample2D (nearest x2, 3x3 conv)
final       conv_norm_out, SiLU, conv_out

Long skips follow UNet2DConditionModel.forward: conv_in's output, every down ResNet's (or
its attention's) output and every downsampler's output are pushed on State.skips, every
up ResNet pops one, exactly as the zoo counts them. A rank holds latent rows [r0, r1);
3x3 convs and GroupNorms see the rest of the image through ctx (hooks.py).
"""
from __future__ import annotations

import torch

from .denoiser import Block, Denoiser, mark_heads, set_roles

ROLES = {"*resnets.*.conv1": "col", "*resnets.*.time_emb_proj": "col", "*resnets.*.norm2": "col",
         "*resnets.*.conv2": "row",
         "*transformer_blocks.*.ff.net.0.proj": ("col", lambda m: [m.out_features // 2] * 2),   # GEGLU [value | gate]
         "*transformer_blocks.*.ff.net.2": "row"}
ROLES |= {f"*transformer_blocks.*.{a}.{p}": "col" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v")}
ROLES |= {f"*transformer_blocks.*.{a}.to_out.0": "row" for a in ("attn1", "attn2")}


def time_ids(image_size, n: int, dtype, device) -> torch.Tensor:
    """SDXL's added size conditioning: original size, crop top-left (0, 0), target size."""
    h, w = image_size
    return torch.tensor([[h, w, 0, 0, h, w]], dtype=dtype, device=device).repeat(n, 1)


class Embed(Block):
    def condition(self, t, pooled):
        net = self.den.net
        dtype = net.conv_in.weight.dtype
        emb = net.time_embedding(net.time_proj(t).to(dtype))
        if net.config.addition_embed_type == "text_time":
            ids = time_ids(self.den.image_size, t.shape[0], pooled.dtype, t.device)
            emb = emb + net.get_aug_embed(emb=emb, encoder_hidden_states=None,
                                          added_cond_kwargs={"text_embeds": pooled, "time_ids": ids})
        return net.time_embed_act(emb) if net.time_embed_act is not None else emb

    def run(self, s, ctx):
        s.c = self.condition(s.t, s.pooled)
        s.x = self.den.net.conv_in(s.latent)
        s.txt = s.text
        s.skips = [s.x]
        return s


class Res(Block):
    def __init__(self, name, den, path, push=False, pop=False):
        super().__init__(name, den, (path,))
        self.path, self.push, self.pop = path, push, pop

    def run(self, s, ctx):
        x = torch.cat([s.x, s.skips.pop()], dim=1) if self.pop else s.x
        s.x = self.den.net.get_submodule(self.path)(x, s.c)
        if self.push:
            s.skips.append(s.x)
        return s


class AttnLayer(Block):
    """Layer k of the Transformer2DModel at `path` (of `layers`)."""

    def __init__(self, name, den, path, k, layers, push):
        owned = (f"{path}.transformer_blocks.{k}",) + ((path,) if layers == 1 else ())
        super().__init__(name, den, owned)
        self.path, self.k, self.layers, self.push = path, k, layers, push

    def run(self, s, ctx):
        tm = self.den.net.get_submodule(self.path)
        x = s.x
        if self.k == 0:
            s.skips.append(x)                                       # the input, for the closing add
            x, _ = tm._operate_on_continuous_inputs(x)
        x = tm.transformer_blocks[self.k](x, encoder_hidden_states=s.txt)
        if self.k == self.layers - 1:
            residual = s.skips.pop()
            b, ch, h, w = residual.shape
            x = tm._get_output_for_continuous_inputs(x, residual, b, h, w, ch if tm.use_linear_projection
                                                     else x.shape[-1])
            if self.push:
                s.skips.append(x)
        s.x = x
        return s


class Resample(Block):
    """Down- or upsampler; a downsampler's output is a long skip too."""

    def __init__(self, name, den, path, push):
        super().__init__(name, den, (path,))
        self.path, self.push = path, push

    def run(self, s, ctx):
        s.x = self.den.net.get_submodule(self.path)(s.x)
        if self.push:
            s.skips.append(s.x)
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        s.x = net.conv_out(net.conv_act(net.conv_norm_out(s.x)))
        return s


def _attention(den, name, path, push):
    tm = den.net.get_submodule(path)
    layers = len(tm.transformer_blocks)
    for k in range(layers):
        den.add(AttnLayer(f"{name}.layer{k}" if layers > 1 else name, den, path, k, layers, push))
        den.attention[f"{path}.transformer_blocks.{k}.attn1"] = None


def build(net, binding, image_size) -> Denoiser:
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.image_size = image_size
    return add_blocks(den)


def add_blocks(den, embed=Embed, res=Res, attention=_attention, final=Final) -> Denoiser:
    """The zoo's U-Net blocks in order: down blocks (resnets, attentions, downsampler), mid,
    up blocks, with the long skips pushed and popped as UNet2DConditionModel does; the
    classes of the family (svd.py: its resnets, attentions and head take frames)."""
    net = den.net
    den.add(embed("embed", den, ("conv_in",)))
    for i, blk in enumerate(net.down_blocks):
        attns = getattr(blk, "attentions", None) or []
        for j in range(len(blk.resnets)):
            den.add(res(f"down{i}.res{j}", den, f"down_blocks.{i}.resnets.{j}", push=not attns))
            if attns:
                attention(den, f"down{i}.attn{j}", f"down_blocks.{i}.attentions.{j}", push=True)
        if blk.downsamplers:
            den.add(Resample(f"down{i}.downsample", den, f"down_blocks.{i}.downsamplers.0", push=True))
    mid = net.mid_block
    den.add(res("mid.res0", den, "mid_block.resnets.0"))
    for k in range(len(mid.attentions)):
        attention(den, "mid.attn", f"mid_block.attentions.{k}", push=False)
        den.add(res(f"mid.res{k + 1}", den, f"mid_block.resnets.{k + 1}"))
    for u, blk in enumerate(net.up_blocks):
        attns = getattr(blk, "attentions", None) or []
        for j in range(len(blk.resnets)):
            den.add(res(f"up{u}.res{j}", den, f"up_blocks.{u}.resnets.{j}", pop=True))
            if attns:
                attention(den, f"up{u}.attn{j}", f"up_blocks.{u}.attentions.{j}", push=False)
        if blk.upsamplers:
            den.add(Resample(f"up{u}.upsample", den, f"up_blocks.{u}.upsamplers.0", push=False))
    den.add(final("final", den, ("conv_norm_out", "conv_out")))
    return den


def class_forward(net, latent, t, text, pooled, image_size) -> torch.Tensor:
    """The class's own forward on whole inputs (tests compare the blocks with it; native_cp runs it)."""
    added = None
    if net.config.addition_embed_type == "text_time":
        added = {"text_embeds": pooled, "time_ids": time_ids(image_size, latent.shape[0], pooled.dtype, latent.device)}
    return net(latent, t, encoder_hidden_states=text, added_cond_kwargs=added, return_dict=False)[0]
