"""UNetSpatioTemporalConditionModel (svd, image-to-video) as planner blocks (planner/zoo/unet.py
spatio_temporal): the U-Net's names (unet.py): embed, down{i}.res{j}, down{i}.attn{j},
down{i}.downsample, mid.res0, mid.attn, mid.res1, up{i}.res{j}, up{i}.attn{j},
up{i}.upsample, final.

Every 2D layer runs on frames x rows x cols with the frames folded into the batch; the
latent is split by rows of every frame, like AnimateDiff's (animatediff.py: a 4D latent
[B, C x F, H, W], unfolded by the embed block and folded back by the final one), so:
- spatial self-attention (attn1 of each spatial BasicTransformerBlock) crosses ranks;
- temporal attention (TemporalBasicTransformerBlock) and the temporal ResNets' (3, 1, 1)
  Conv3d act along the frames at one position: local to the rank's rows;
- the temporal ResNets' GroupNorms normalise over frames and rows together (hooks folds
  the frames into the row width), the spatial ones per frame, both with whole-image
  statistics through ctx; 3x3 convs take halo rows.

Image conditioning (StableVideoDiffusionPipeline): the CLIP image embedding is the text
(one token; zeros for the unconditional branch); the VAE latent of the (noise-augmented)
image, concatenated to every frame's channels, and the added time ids (fps - 1, motion
bucket, noise augmentation) ride as the pooled conditioning [image latent (C x H x W) |
3 ids] (zeros for the image latent of the unconditional branch): the embed block takes the
rows of this rank's slice. There is no image input: with random weights the image is a
deterministic picture drawn from the prompt's bytes (`condition_image`).
"""
from __future__ import annotations

import torch

from . import unet
from .animatediff import Final, unfold      # the head folds the frames back as AnimateDiff's does
from .denoiser import Block, Denoiser, mark_heads, set_roles

# StableVideoDiffusionPipeline.__call__ defaults (fps 7 is passed as fps - 1)
FPS, MOTION_BUCKET, NOISE_AUG = 7, 127, 0.02
# SVD's temporal blocks: a GEGLU ff_in before the attention (unet.ROLES has the rest)
ROLES = unet.ROLES | {"*temporal_transformer_blocks.*.ff_in.net.0.proj": ("col", lambda m: [m.out_features // 2] * 2),
                      "*temporal_transformer_blocks.*.ff_in.net.2": "row"}
TIME_IDS = 3


def indicator(x: torch.Tensor, frames: int) -> torch.Tensor:
    """UNetSpatioTemporalConditionModel's image_only_indicator: zeros [B, F] (videos)."""
    return torch.zeros(x.shape[0] // frames, frames, dtype=x.dtype, device=x.device)


class Embed(Block):
    def condition(self, t, pooled):
        net = self.den.net
        emb = net.time_embedding(net.time_proj(t).to(pooled.dtype))
        ids = pooled[:, -TIME_IDS:]
        aug = net.add_embedding(net.add_time_proj(ids.flatten()).reshape(t.shape[0], -1).to(emb.dtype))
        return (emb + aug).repeat_interleave(self.den.frames, dim=0)

    def run(self, s, ctx):
        net, f = self.den.net, self.den.frames
        lat = unfold(s.latent, f)                                  # [B x F, C, rows, W]
        c = lat.shape[1]
        image = s.pooled[:, :-TIME_IDS].view(lat.shape[0] // f, c, ctx.R, lat.shape[-1])[:, :, ctx.r0:ctx.r1]
        image = image.repeat_interleave(f, dim=0).to(lat.dtype)
        s.c = self.condition(s.t, s.pooled)
        s.x = net.conv_in(torch.cat([lat, image], dim=1))
        s.txt = s.text.repeat_interleave(f, dim=0)
        s.skips = [s.x]
        return s


class Res(unet.Res):
    def run(self, s, ctx):
        x = torch.cat([s.x, s.skips.pop()], dim=1) if self.pop else s.x
        s.x = self.den.net.get_submodule(self.path)(x, s.c, image_only_indicator=indicator(x, self.den.frames))
        if self.push:
            s.skips.append(s.x)
        return s


class Attn(Block):
    """One TransformerSpatioTemporalModel (SVD has one layer per attention block)."""

    def __init__(self, name, den, path, push):
        super().__init__(name, den, (path,))
        self.path, self.push = path, push

    def run(self, s, ctx):
        tm = self.den.net.get_submodule(self.path)
        s.x = tm(s.x, encoder_hidden_states=s.txt, image_only_indicator=indicator(s.x, self.den.frames),
                 return_dict=False)[0]
        if self.push:
            s.skips.append(s.x)
        return s


def _attention(den, name, path, push):
    tm = den.net.get_submodule(path)
    if len(tm.transformer_blocks) != 1:
        raise NotImplementedError(f"{path}: SVD attention blocks with {len(tm.transformer_blocks)} layers "
                                  f"(the zoo names one block per TransformerSpatioTemporalModel of one layer)")
    den.add(Attn(name, den, path, push))
    den.attention[f"{path}.transformer_blocks.0.attn1"] = None      # spatial; temporal ones stay local


def build(net, binding, image_size, frames: int) -> Denoiser:
    set_roles(net, ROLES)
    mark_heads(net)
    den = Denoiser(net, binding)
    den.image_size, den.frames = image_size, frames
    return unet.add_blocks(den, Embed, Res, _attention, Final)


def class_forward(net, latent, t, text, pooled, image_size=None) -> torch.Tensor:
    """The class's own forward on a [B, C x F, H, W] latent (the pipeline's [B, F, C, H, W])."""
    b, cf, h, w = latent.shape
    c = net.config.out_channels
    f = cf // c
    sample = latent.view(b, c, f, h, w).transpose(1, 2)
    image = pooled[:, :-TIME_IDS].view(b, 1, c, h, w).expand(b, f, c, h, w)
    out = net(torch.cat([sample, image], dim=2), t, text, pooled[:, -TIME_IDS:], return_dict=False)[0]
    return out.transpose(1, 2).reshape(b, cf, h, w)


# ---------------------------------------------------------------- StableVideoDiffusionPipeline's conditioning
def condition_image(prompt: str, height: int, width: int):
    """A deterministic RGB picture from the prompt's bytes (smooth colour fields: a random
    6 x 6 grid of colours, bicubically enlarged), as a PIL image."""
    import zlib

    from PIL import Image
    g = torch.Generator().manual_seed(zlib.crc32(prompt.encode()))
    grid = torch.rand(1, 3, 6, 6, generator=g)
    img = torch.nn.functional.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)
    px = (img[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(px)


def encode(pipeline, prompt: str, negative: str = ""):
    """The pipeline's _encode_image (CLIP image embedding), its noise-augmented
    _encode_vae_image and _get_add_time_ids, for the conditional branch and the zeros of the
    unconditional one (SVD has no negative prompt)."""
    from transformers import CLIPImageProcessor

    from ..blocks import Conditioning
    p, dev, dtype = pipeline.pipe, pipeline.device, pipeline.dtype
    if p.feature_extractor is None:          # CLIPImageProcessor's defaults are the OpenAI CLIP statistics
        p.feature_extractor = CLIPImageProcessor()
    h, w = pipeline.image_size
    image = condition_image(prompt, h, w)
    emb = p._encode_image(image, dev, 1, False)[0]                                   # [1, D]
    pixels = p.video_processor.preprocess(image, height=h, width=w).to(dev)
    g = torch.Generator().manual_seed(pipeline.seed)
    pixels = pixels + NOISE_AUG * torch.randn(pixels.shape, generator=g).to(pixels)
    latent = p._encode_vae_image(pixels, dev, 1, False)[0]                           # [C, h, w]
    ids = p._get_add_time_ids(FPS - 1, MOTION_BUCKET, NOISE_AUG, dtype, 1, 1, False)[0].to(dev)
    cond = torch.cat([latent.flatten().to(dtype), ids.to(dtype)])
    uncond = torch.cat([torch.zeros_like(latent.flatten(), dtype=dtype), ids.to(dtype)])
    return Conditioning(emb.to(dtype), torch.zeros_like(emb, dtype=dtype), cond, uncond)


@torch.no_grad()
def decode(pipeline, latent):
    from .pipeline import uint8
    p = pipeline.pipe
    b, cf, h, w = latent.shape
    c = p.vae.config.latent_channels
    z = latent.to(pipeline.device, next(p.vae.parameters()).dtype).view(b, c, cf // c, h, w).transpose(1, 2)
    video = p.decode_latents(z, cf // c, decode_chunk_size=cf // c)
    return uint8(p.video_processor.postprocess_video(video, output_type="pt"), video=True)
