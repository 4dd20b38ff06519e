"""UNetMotionModel (animatediff: UNet2DConditionModel + MotionAdapter, as AnimateDiffPipeline
combines them with UNetMotionModel.from_unet2d) as planner blocks (planner/zoo/unet.py
motion): the U-Net's blocks (unet.py) with a motion module after every down / up ResNet
(or its attention) and after the mid attention:

    embed, down{i}.res{j}, down{i}.attn{j}, down{i}.attn{j}.motion | down{i}.motion{j},
    down{i}.downsample, mid.res0, mid.attn, mid.attn.motion, mid.res1, up{i}.res{j}, ..., final

Every 2D layer runs on frames x rows x cols: the frames are folded into the batch, as
UNetMotionModel.forward does. The latent is split by rows of every frame (the planner's
row split; planner/strategies/checks.spatial_comms counts halo rows per frame), so:
- spatial self-attention (attn1 of each Transformer2DModel) crosses ranks through ctx;
- a motion module attends across frames at one position: local to the rank's rows;
- its GroupNorm normalises over frames and rows together (hooks.GroupNormHook folds the
  frames into the row width and asks ctx for whole-image statistics);
- 3x3 convs take halo rows and per-frame GroupNorms whole-image statistics, as in unet.py.

The executor's latent is 4D, [B, C x F, H, W] (channels x frames folded; elementwise
samplers do not care), so every strategy slices rows as it does for an image; the embed
block unfolds it to UNetMotionModel's [B x F, C, h, W] and the final block folds it back.
AnimateDiffPipeline repeats the prompt embeddings per frame; the embed block does too.
"""
from __future__ import annotations

import torch

from . import unet
from .denoiser import Block, Denoiser, mark_heads, set_roles


def unfold(lat: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, C x F, h, W] -> [B x F, C, h, W] (frame-major within each sample)."""
    b, cf, h, w = lat.shape
    return lat.view(b, cf // frames, frames, h, w).transpose(1, 2).reshape(b * frames, cf // frames, h, w)


def fold(x: torch.Tensor, frames: int) -> torch.Tensor:
    """[B x F, C, h, W] -> [B, C x F, h, W]."""
    bf, c, h, w = x.shape
    return x.view(bf // frames, frames, c, h, w).transpose(1, 2).reshape(bf // frames, c * frames, h, w)


class Embed(Block):
    def condition(self, t, pooled=None):
        net = self.den.net
        emb = net.time_embedding(net.time_proj(t).to(net.conv_in.weight.dtype))
        return emb.repeat_interleave(self.den.frames, dim=0)

    def run(self, s, ctx):
        f = self.den.frames
        s.c = self.condition(s.t)
        s.x = self.den.net.conv_in(unfold(s.latent, f))
        s.txt = s.text.repeat_interleave(f, dim=0)
        s.skips = [s.x]
        return s


class Motion(Block):
    """AnimateDiffTransformer3D at `path`: attention over the frames at each position."""

    def __init__(self, name, den, path, push):
        super().__init__(name, den, (path,))
        self.path, self.push = path, push

    def run(self, s, ctx):
        s.x = self.den.net.get_submodule(self.path)(s.x, num_frames=self.den.frames)
        if self.push:
            s.skips.append(s.x)
        return s


class Final(Block):
    def run(self, s, ctx):
        net = self.den.net
        s.x = fold(net.conv_out(net.conv_act(net.conv_norm_out(s.x))), self.den.frames)
        return s


def build(net, binding, image_size, frames: int) -> Denoiser:
    if net.config.addition_embed_type is not None:
        raise NotImplementedError("UNetMotionModel with added conditioning (SDXL motion adapters) is not supported")
    set_roles(net, unet.ROLES)            # the motion modules' attentions and GEGLUs match the same patterns
    mark_heads(net)
    den = Denoiser(net, binding)
    den.image_size, den.frames = image_size, frames
    den.add(Embed("embed", den, ("conv_in",)))
    for i, blk in enumerate(net.down_blocks):
        attns = getattr(blk, "attentions", None) or []
        for j in range(len(blk.resnets)):
            den.add(unet.Res(f"down{i}.res{j}", den, f"down_blocks.{i}.resnets.{j}"))
            if attns:
                unet._attention(den, f"down{i}.attn{j}", f"down_blocks.{i}.attentions.{j}", push=False)
            name = f"down{i}.attn{j}.motion" if attns else f"down{i}.motion{j}"
            den.add(Motion(name, den, f"down_blocks.{i}.motion_modules.{j}", push=True))
        if blk.downsamplers:
            den.add(unet.Resample(f"down{i}.downsample", den, f"down_blocks.{i}.downsamplers.0", push=True))
    mid = net.mid_block
    den.add(unet.Res("mid.res0", den, "mid_block.resnets.0"))
    motion = getattr(mid, "motion_modules", None)
    for k in range(len(mid.attentions)):
        unet._attention(den, "mid.attn", f"mid_block.attentions.{k}", push=False)
        if motion:
            den.add(Motion("mid.attn.motion", den, f"mid_block.motion_modules.{k}", push=False))
        den.add(unet.Res(f"mid.res{k + 1}", den, f"mid_block.resnets.{k + 1}"))
    for u, blk in enumerate(net.up_blocks):
        attns = getattr(blk, "attentions", None) or []
        for j in range(len(blk.resnets)):
            den.add(unet.Res(f"up{u}.res{j}", den, f"up_blocks.{u}.resnets.{j}", pop=True))
            if attns:
                unet._attention(den, f"up{u}.attn{j}", f"up_blocks.{u}.attentions.{j}", push=False)
            name = f"up{u}.attn{j}.motion" if attns else f"up{u}.motion{j}"
            den.add(Motion(name, den, f"up_blocks.{u}.motion_modules.{j}", push=False))
        if blk.upsamplers:
            den.add(unet.Resample(f"up{u}.upsample", den, f"up_blocks.{u}.upsamplers.0", push=False))
    den.add(Final("final", den, ("conv_norm_out", "conv_out")))
    return den


def make_denoiser(pipeline):
    """UNetMotionModel.from_unet2d of the pipeline's U-Net and motion adapter (what
    AnimateDiffPipeline.__init__ does), each built (or loaded) as its own component."""
    from diffusers import UNetMotionModel
    unet2d = pipeline._component("unet", 1)
    adapter = pipeline._component("motion_adapter", 7)
    net = UNetMotionModel.from_unet2d(unet2d, adapter)
    if pipeline.dtype != torch.float32:
        net = net.to(pipeline.dtype)
    return net.to(pipeline.device).eval().requires_grad_(False)


def meta_denoiser(pc):
    """The same on the meta device, from the configs alone (block names, parameters)."""
    import diffusers

    from .pipeline import _quiet
    _quiet()           # from_unet2d's .to(dtype) warns about float32 modules it does not have
    with torch.device("meta"):
        unet2d = diffusers.UNet2DConditionModel.from_config(pc.config("unet"))
        adapter = diffusers.MotionAdapter.from_config(pc.config("motion_adapter"))
        return diffusers.UNetMotionModel.from_unet2d(unet2d, adapter)


def class_forward(net, latent, t, text, pooled=None, image_size=None, frames=None) -> torch.Tensor:
    """The class's own forward on a [B, C x F, H, W] latent (AnimateDiffPipeline repeats the
    prompt per frame)."""
    b, cf, h, w = latent.shape
    c = net.config.in_channels
    sample = latent.view(b, c, cf // c, h, w)
    out = net(sample, t, encoder_hidden_states=text.repeat_interleave(cf // c, dim=0), return_dict=False)[0]
    return out.reshape(b, cf, h, w)


# ---------------------------------------------------------------- AnimateDiffPipeline's text and decode
def encode(pipeline, prompt: str, negative: str = ""):
    from ..blocks import Conditioning
    c, u = pipeline.pipe.encode_prompt(prompt, pipeline.device, 1, True, negative_prompt=negative)
    return Conditioning(c[0].to(pipeline.dtype), u[0].to(pipeline.dtype))


@torch.no_grad()
def decode(pipeline, latent):
    """AnimateDiffPipeline.decode_latents (every frame through the 2D VAE) on the unfolded
    [B, C, F, H, W] latent, then its video processor."""
    from .pipeline import uint8
    p = pipeline.pipe
    b, cf, h, w = latent.shape
    c = p.vae.config.latent_channels
    z = latent.to(pipeline.device, next(p.vae.parameters()).dtype).view(b, c, cf // c, h, w)
    video = p.decode_latents(z)
    return uint8(p.video_processor.postprocess_video(video, output_type="pt"), video=True)
