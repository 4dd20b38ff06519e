"""Write the zoo's config files that no public mirror holds (planner/zoo/configs/).

Files copied verbatim from a public mirror are not touched here (their sources.json entry
names the mirror and commit). Every other file is one of:

* `diffusers`: what `save_pretrained` of the diffusers 0.42.1 class writes when the class
  is built with the overrides below (the values a conversion script or the original
  repository sets; everything else is the class default);
* `derived`: a verbatim mirror file with the listed keys changed or dropped (said so).

Needs torch and diffusers (the test extra); the planner never imports it.

    python tools/gen_zoo_configs.py      # rewrites the generated files, prints each path
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "planner" / "zoo" / "configs"

# (model id, component) -> ("diffusers", class, overrides) | ("derived", base "id/component", changes, drops)
SD_VAE_2D = "sdxl/vae"
T5_XXL = ("derived", "flux.1-schnell/text_encoder_2", {}, ("_name_or_path", "quantization_config"))
CLIP_L = ("derived", "flux.1-schnell/text_encoder", {}, ("_name_or_path",))
CLIP_L_PROJ = ("derived", "flux.1-schnell/text_encoder", {"architectures": ["CLIPTextModelWithProjection"]},
               ("_name_or_path",))
CLIP_G_PROJ = ("derived", "sdxl/text_encoder_2", {}, ())
SD3_VAE = ("diffusers", "AutoencoderKL", {   # convert_sd3_to_diffusers.py: the SDXL VAE config with these
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 2, "sample_size": 1024,
    "force_upcast": True, "latent_channels": 16, "use_post_quant_conv": False, "use_quant_conv": False,
    "scaling_factor": 1.5305, "shift_factor": 0.0609})
PIXART = {"sample_size": 128, "num_layers": 28, "attention_head_dim": 72, "in_channels": 4, "out_channels": 8,
          "patch_size": 2, "attention_bias": True, "num_attention_heads": 16, "cross_attention_dim": 1152,
          "activation_fn": "gelu-approximate", "num_embeds_ada_norm": 1000, "norm_type": "ada_norm_single",
          "norm_elementwise_affine": False, "norm_eps": 1e-6, "caption_channels": 4096}

SPECS = {
    ("flux.1-schnell", "transformer"): ("derived", "flux.1-schnell/transformer", {},
                                        ("_name_or_path", "quantization_config")),
    ("flux.1-dev", "transformer"): ("derived", "flux.1-schnell/transformer", {"guidance_embeds": True},
                                    ("_name_or_path", "quantization_config")),
    ("flux.1-dev", "text_encoder"): CLIP_L, ("flux.1-dev", "text_encoder_2"): T5_XXL,
    ("flux.1-dev", "vae"): ("derived", "flux.1-schnell/vae", {}, ("_name_or_path",)),
    ("sd3-medium", "transformer"): ("diffusers", "SD3Transformer2DModel", {
        "sample_size": 128, "patch_size": 2, "in_channels": 16, "joint_attention_dim": 4096, "num_layers": 24,
        "caption_projection_dim": 1536, "num_attention_heads": 24, "pos_embed_max_size": 192, "qk_norm": None,
        "dual_attention_layers": []}),
    ("sd3.5-large", "transformer"): ("diffusers", "SD3Transformer2DModel", {
        "sample_size": 128, "patch_size": 2, "in_channels": 16, "joint_attention_dim": 4096, "num_layers": 38,
        "caption_projection_dim": 2432, "num_attention_heads": 38, "pos_embed_max_size": 192,
        "qk_norm": "rms_norm", "dual_attention_layers": []}),
    ("pixart-alpha", "transformer"): ("diffusers", "PixArtTransformer2DModel", PIXART),
    ("pixart-sigma", "transformer"): ("diffusers", "PixArtTransformer2DModel", PIXART | {
        "interpolation_scale": 2, "use_additional_conditions": False}),
    ("dit-xl-2", "transformer"): ("diffusers", "DiTTransformer2DModel", {"sample_size": 32, "out_channels": 8}),
    ("hunyuandit", "transformer"): ("diffusers", "HunyuanDiT2DModel", {
        "in_channels": 4, "patch_size": 2, "sample_size": 128, "hidden_size": 1408, "num_layers": 40,
        "mlp_ratio": 4.3637, "use_style_cond_and_image_meta_size": False}),
    ("cogvideox-2b", "transformer"): ("diffusers", "CogVideoXTransformer3DModel", {
        "num_layers": 30, "num_attention_heads": 30, "use_rotary_positional_embeddings": False}),
    ("cogvideox-5b", "transformer"): ("diffusers", "CogVideoXTransformer3DModel", {
        "num_layers": 42, "num_attention_heads": 48, "use_rotary_positional_embeddings": True}),
    ("cogvideox-2b", "vae"): ("diffusers", "AutoencoderKLCogVideoX", {}),
    ("cogvideox-5b", "vae"): ("diffusers", "AutoencoderKLCogVideoX", {"scaling_factor": 0.7}),
    ("hunyuanvideo", "transformer"): ("diffusers", "HunyuanVideoTransformer3DModel", {}),
    ("hunyuanvideo", "vae"): ("diffusers", "AutoencoderKLHunyuanVideo", {}),
    ("opensora-2.0", "vae"): ("diffusers", "AutoencoderKLHunyuanVideo", {}),
    ("wan2.1-t2v-1.3b", "transformer"): ("diffusers", "WanTransformer3DModel", {
        "num_attention_heads": 12, "ffn_dim": 8960, "num_layers": 30}),
    ("wan2.1-t2v-14b", "transformer"): ("diffusers", "WanTransformer3DModel", {}),
    ("wan2.1-t2v-1.3b", "vae"): ("diffusers", "AutoencoderKLWan", {}),
    ("wan2.1-t2v-14b", "vae"): ("diffusers", "AutoencoderKLWan", {}),
    ("mochi-1", "transformer"): ("diffusers", "MochiTransformer3DModel", {}),
    ("mochi-1", "vae"): ("diffusers", "AutoencoderKLMochi", {}),
    ("latte-1", "transformer"): ("diffusers", "LatteTransformer3DModel", {
        "num_attention_heads": 16, "attention_head_dim": 72, "in_channels": 4, "out_channels": 8, "num_layers": 28,
        "cross_attention_dim": 1152, "attention_bias": True, "sample_size": 64, "patch_size": 2,
        "activation_fn": "gelu-approximate", "num_embeds_ada_norm": 1000, "norm_type": "ada_norm_single",
        "norm_elementwise_affine": False, "norm_eps": 1e-6, "caption_channels": 4096, "video_length": 16}),
    ("svd", "unet"): ("diffusers", "UNetSpatioTemporalConditionModel", {"sample_size": 96}),
    ("svd", "vae"): ("diffusers", "AutoencoderKLTemporalDecoder", {
        "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
        "layers_per_block": 2, "latent_channels": 4, "sample_size": 768}),
    ("animatediff", "motion_adapter"): ("diffusers", "MotionAdapter", {}),
    ("animatediff", "unet"): ("derived", "sd1.5/unet", {}, ()),
    ("animatediff", "vae"): ("derived", "sd1.5/vae", {}, ()),
    ("animatediff", "text_encoder"): ("derived", "sd1.5/text_encoder", {}, ()),
}
for mid in ("sd3-medium", "sd3.5-large"):
    SPECS |= {(mid, "text_encoder"): CLIP_L_PROJ, (mid, "text_encoder_2"): CLIP_G_PROJ,
              (mid, "text_encoder_3"): T5_XXL, (mid, "vae"): SD3_VAE}
for mid in ("pixart-alpha", "pixart-sigma", "latte-1", "cogvideox-2b", "cogvideox-5b", "mochi-1"):
    SPECS[(mid, "text_encoder")] = T5_XXL
for mid in ("pixart-alpha", "dit-xl-2", "latte-1"):
    SPECS[(mid, "vae")] = ("derived", "sd1.5/vae", {}, ())
SPECS[("pixart-sigma", "vae")] = SPECS[("hunyuandit", "vae")] = ("derived", SD_VAE_2D, {}, ())
SPECS[("hunyuanvideo", "text_encoder_2")] = CLIP_L
SPECS[("opensora-2.0", "text_encoder")] = T5_XXL
SPECS[("opensora-2.0", "text_encoder_2")] = CLIP_L
SPECS[("opensora-1.2", "text_encoder")] = T5_XXL


def _diffusers_config(cls_name: str, overrides: dict) -> str:
    import diffusers
    import torch
    with torch.device("meta"):
        model = getattr(diffusers, cls_name).from_config(overrides)
    return model.to_json_string()


def _derived(base: str, changes: dict, drops: tuple) -> str:
    cfg = json.loads((ROOT / base / "config.json").read_text())
    cfg = {k: v for k, v in cfg.items() if k not in drops} | changes
    return json.dumps(dict(sorted(cfg.items())), indent=2) + "\n"


def main() -> None:
    # derived files may copy generated ones: write the verbatim-based ones first
    for (mid, comp), spec in sorted(SPECS.items(), key=lambda kv: kv[1][0] != "derived"):
        text = _diffusers_config(spec[1], spec[2]) if spec[0] == "diffusers" else _derived(*spec[1:])
        path = ROOT / mid / comp / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
