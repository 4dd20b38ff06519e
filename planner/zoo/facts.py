"""Scenario-independent facts of every model id, copied from shared/data/models.csv.

The architecture is not here: it is the diffusers configs in planner/zoo/configs/<id>/
(sources.json names each file's origin). These rows hold what a config does not say (the
pipeline __call__ defaults: steps, guidance, resolution, frames, text tokens) and the grid
facts (latent channels, patch, VAE compression), which tests/test_zoo_configs.py checks
against the configs. The project must run without shared/, so the columns the zoo needs
live here, each row with the csv's `sources` text. Choices made where the csv is not a
single value:

* opensora-2.0: the csv gives two defaults (768px = 576x1024, 256px = 192x336); we use the
  first, 576x1024 x 129 frames.
* opensora-1.2: "240p" at 9:16 is 240x426 in Open-Sora; 426 is not a multiple of
  vae 8 x patch 2, and STDiT3 pads its patch grid up to ceil(53/2) = 27 columns, i.e. the
  token grid of 240x432. We use 240x432 x 51 frames (sample.py's num_frames).
* mochi-1: pipeline default 19 frames (the docs' 163-frame reference also works).
* svd: "text" is the CLIP ViT-H image embedding, one token; latent_channels is the 4
  noisy channels (the U-Net's conv_in also takes 4 channels of the conditioning image).
* flux / opensora-2.0: 2x2 latent packing is recorded as patch 2 on the 16-channel latent
  (the csv writes "patch 1 on packed latents"); the token grid is the same.
"""
from __future__ import annotations

from planner.spec import ModelFacts

_PIPE = "diffusers pipeline __call__ defaults (src/diffusers/pipelines/*, diffusers@58eb52c)"

_SOURCES = {
    "sd1.5": "unet/config.json at HDRJ-One/runwayml-stable-diffusion-v1-5@2e7465d; " + _PIPE,
    "sd2.1": "unet/config.json at Vikas-2025/Hugging_face_sta_dif_2.1@8d0c902 (sample_size 96, "
             "use_linear_projection); " + _PIPE,
    "sdxl": "unet/config.json at DeveloperRadleighPompei/sdxl@51e1b90; " + _PIPE,
    "sd3-medium": "scripts/convert_sd3_to_diffusers.py + SD3Transformer2DModel defaults "
                  "(diffusers@58eb52c); config dicts quoted in code corpus (Comfy-Org sd3.5 "
                  "loaders); " + _PIPE,
    "sd3.5-large": "transformer config quoted in code corpus (e.g. 'LARGE_TRANSFORMER_OVERRIDES', "
                   "Comfy-Org/stable-diffusion-3.5-fp8 loader): 38 layers, 38 heads, "
                   "caption_projection_dim 2432, qk_norm rms_norm, pos_embed_max_size 192, no "
                   "dual_attention_layers; " + _PIPE,
    "flux.1-dev": "scripts/convert_flux_to_diffusers.py (19/38 layers, inner 3072, "
                  "guidance-distilled variant) + FluxTransformer2DModel defaults (diffusers@58eb52c); "
                  + _PIPE + "; docs/source/en/api/pipelines/flux.md (example 50 steps, guidance 3.5)",
    "flux.1-schnell": "same FluxTransformer2DModel config as Flux.1-dev (research row) with "
                      "guidance_embeds=False; FLUX.1-schnell model-card usage example (copy found in "
                      "the public code corpus: guidance_scale=0.0, num_inference_steps=4, "
                      "max_sequence_length=256); xDiT docs flux.md (schnell, 4 steps); computed with "
                      "diffusers on the meta device (FlopCounterMode)",
    "pixart-alpha": "scripts/convert_pixart_alpha_to_diffusers.py (28 layers, 16x72, out 8, cross "
                    "1152) (diffusers@58eb52c); " + _PIPE,
    "pixart-sigma": "scripts/convert_pixart_sigma_to_diffusers.py (diffusers@58eb52c); docs "
                    "pixart_sigma.md (0.6B); " + _PIPE,
    "dit-xl-2": "scripts/convert_dit_to_diffusers.py (diffusers@58eb52c); " + _PIPE,
    "hunyuandit": "transformer config dict 'hunyuan_transformer_config_v12' quoted in code corpus "
                  "(40 layers, 1408 hidden, mlp_ratio 4.3637, text_len 77/256); "
                  "scripts/convert_hunyuandit_to_diffusers.py; " + _PIPE,
    "cogvideox-2b": "scripts/convert_cogvideox_to_diffusers.py (2B: 30 layers/30 heads/no RoPE; 5B: "
                    "42/48/RoPE) + class defaults (diffusers@58eb52c); " + _PIPE,
    "cogvideox-5b": "scripts/convert_cogvideox_to_diffusers.py (diffusers@58eb52c); " + _PIPE,
    "hunyuanvideo": "scripts/convert_hunyuan_video_to_diffusers.py (T2V config) + class defaults "
                    "(diffusers@58eb52c); " + _PIPE + "; docs hunyuan_video.md (13B)",
    "wan2.1-t2v-1.3b": "scripts/convert_wan_to_diffusers.py get_transformer_config('Wan-T2V-1.3B') "
                       "(diffusers@58eb52c); " + _PIPE + "; docs wan.md",
    "wan2.1-t2v-14b": "scripts/convert_wan_to_diffusers.py get_transformer_config('Wan-T2V-14B') "
                      "(diffusers@58eb52c); " + _PIPE,
    "mochi-1": "MochiTransformer3DModel defaults + pipeline (default_height 480, default_width 848, "
               "spatial 8 / temporal 6) (diffusers@58eb52c); docs mochi.md (10B; 163-frame example)",
    "latte-1": "Vchitect/Latte configs/t2x/t2v_sample.yaml (video_length 16, 512x512, 50 DDIM steps, "
               "guidance 7.5); pipeline_latte.py (max_length 120) (diffusers@58eb52c)",
    "opensora-2.0": "hpcaitech/Open-Sora configs/diffusion/inference/256px.py & 768px.py @7ad6a96; "
                    "README (11B; measured latency table)",
    "opensora-1.2": "hpcaitech/Open-Sora@6452e68 configs/opensora-v1-2/inference/sample.py, "
                    "opensora/models/stdit/stdit3.py, docs/report_03.md (1.1B; VAE = SDXL 2D VAE 8x8 "
                    "+ 300M temporal VAE 4x, 384M total)",
    "svd": "diffusers 0.42.1 (pip), src/diffusers/models/unets/unet_spatio_temporal_condition.py, "
           "unet_motion_model.py (class defaults = xt config: block_out 320/640/1280/1280, heads "
           "5/10/20/20, cross-attn 1024, num_frames 25; the same values quoted from the xt unet config "
           "in public code); pipeline_stable_video_diffusion.py __call__ defaults (576x1024, 25 steps, "
           "guidance 1.0->3.0); AsyncDiff repo examples/run_svd.py",
    "animatediff": "SD1.5 UNet config as the research sd1.5 row; diffusers 0.42.1 (pip), "
                   "src/diffusers/models/unets/unet_spatio_temporal_condition.py, unet_motion_model.py "
                   "(MotionAdapter class defaults: 2 motion layers per block, 8 heads, max_seq 32, mid "
                   "block on); AsyncDiff repo examples/run_animatediff.py (16 frames, guidance 7.5, 50 "
                   "steps)",
}

# id: (name, arch, family, cfg, H, W, frames, steps, text_tokens, vae_t, latent_ch, patch,
#      flow_matching, factorised_attention, long_skips)        vae_spatial is 8 for all.
_ROWS = {
    "sd1.5": ("SD1.5", "unet", "unet", True, 512, 512, 1, 50, 77, 1, 4, 1, False, False, True),
    "sd2.1": ("SD2.1 (768-v)", "unet", "unet", True, 768, 768, 1, 50, 77, 1, 4, 1, False, False, True),
    "sdxl": ("SDXL base 1.0", "unet", "unet", True, 1024, 1024, 1, 50, 77, 1, 4, 1, False, False, True),
    "sd3-medium": ("SD3-medium", "mmdit", "mmdit", True, 1024, 1024, 1, 28, 333, 1, 16, 2,
                   True, False, False),
    "sd3.5-large": ("SD3.5-large", "mmdit", "mmdit", True, 1024, 1024, 1, 28, 333, 1, 16, 2,
                    True, False, False),
    "flux.1-dev": ("Flux.1-dev", "mmdit", "mmdit", False, 1024, 1024, 1, 28, 512, 1, 16, 2,
                   True, False, False),
    "flux.1-schnell": ("Flux.1-schnell", "mmdit", "mmdit", False, 1024, 1024, 1, 4, 256, 1, 16, 2,
                       True, False, False),
    "pixart-alpha": ("PixArt-alpha XL-2-1024-MS", "dit", "dit", True, 1024, 1024, 1, 20, 120, 1, 4, 2,
                     False, False, False),
    "pixart-sigma": ("PixArt-Sigma XL-2-1024-MS", "dit", "dit", True, 1024, 1024, 1, 20, 300, 1, 4, 2,
                     False, False, False),
    "dit-xl-2": ("DiT-XL/2-256", "dit", "dit", True, 256, 256, 1, 50, 0, 1, 4, 2, False, False, False),
    "hunyuandit": ("HunyuanDiT v1.2", "dit", "dit", True, 1024, 1024, 1, 50, 333, 1, 4, 2,
                   False, False, True),
    "cogvideox-2b": ("CogVideoX-2b", "video-mmdit", "video", True, 480, 720, 49, 50, 226, 4, 16, 2,
                     False, False, False),
    "cogvideox-5b": ("CogVideoX-5b", "video-mmdit", "video", True, 480, 720, 49, 50, 226, 4, 16, 2,
                     False, False, False),
    "hunyuanvideo": ("HunyuanVideo (T2V)", "video-mmdit", "mmdit", False, 720, 1280, 129, 50, 256, 4,
                     16, 2, True, False, False),
    "wan2.1-t2v-1.3b": ("Wan2.1-T2V-1.3B", "video-dit", "video", True, 480, 832, 81, 50, 512, 4, 16, 2,
                        True, False, False),
    "wan2.1-t2v-14b": ("Wan2.1-T2V-14B", "video-dit", "video", True, 480, 832, 81, 50, 512, 4, 16, 2,
                       True, False, False),
    "mochi-1": ("Mochi-1-preview", "video-mmdit", "mmdit", True, 480, 848, 19, 64, 256, 6, 12, 2,
                True, False, False),
    "latte-1": ("Latte-1 (T2V)", "video-dit", "dit", True, 512, 512, 16, 50, 120, 1, 4, 2,
                False, True, False),
    "opensora-2.0": ("Open-Sora 2.0 (11B)", "video-mmdit", "mmdit", True, 576, 1024, 129, 50, 512, 4,
                     16, 2, True, False, False),
    "opensora-1.2": ("Open-Sora 1.2 (STDiT3-XL/2)", "video-dit", "dit", True, 240, 432, 51, 30, 300, 4,
                     4, 2, True, True, False),
    "svd": ("SVD img2vid-xt", "video-unet", "unet", True, 576, 1024, 25, 25, 1, 1, 4, 1,
            False, True, True),
    "animatediff": ("AnimateDiff (SD1.5 + motion adapter v1-5-2)", "video-unet", "unet", True, 512, 512,
                    16, 50, 77, 1, 4, 1, False, True, True),
}


def _make(mid: str, row: tuple) -> ModelFacts:
    (name, arch, family, cfg, h, w, frames, steps, text, vae_t, ch, patch,
     flow, factorised, skips) = row
    return ModelFacts(id=mid, name=name, arch=arch, family=family, cfg_default=cfg,
                      default_height=h, default_width=w, default_frames=frames,
                      default_steps=steps, text_tokens=text, vae_spatial=8, vae_temporal=vae_t,
                      latent_channels=ch, patch=patch, flow_matching=flow,
                      factorised_attention=factorised, long_skips=skips, source=_SOURCES[mid])


FACTS: dict[str, ModelFacts] = {mid: _make(mid, row) for mid, row in _ROWS.items()}
