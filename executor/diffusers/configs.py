"""The real diffusers configs of every pipeline `run --model` builds, in the layout of a
diffusers folder: model_index.json (pipeline class, component -> [library, class]) and
one config dict per component.

    pipeline_configs(model_id) -> PipelineConfigs

The model configs are the zoo's (planner/zoo/configs/<model-id>/model_index.json and
<component>/config.json, each file's source in its sources.json); the zoo ships no
scheduler configs, so those (the sampler's shift and prediction type) come from the
table below, each row naming its repository. A `--weights DIR` folder brings its own
configs (weights.py), which replace these.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ZOO_CONFIGS = Path(__file__).resolve().parents[2] / "planner" / "zoo" / "configs"


@dataclass(frozen=True)
class PipelineConfigs:
    """One pipeline: its class, and per component (library, class name, config dict)."""

    model_id: str
    pipeline: str                                   # e.g. StableDiffusionXLPipeline
    components: dict = field(default_factory=dict)  # name -> (library, class, config)
    source: str = ""

    def cls(self, name: str) -> str:
        return self.components[name][1]

    def config(self, name: str) -> dict:
        return dict(self.components[name][2])

    @property
    def denoiser(self) -> str:
        """The component that denoises: unet or transformer."""
        return "unet" if "unet" in self.components else "transformer"

    def text_encoders(self) -> list[str]:
        return sorted(n for n in self.components if n.startswith("text_encoder"))


# The sampler settings of each pipeline's scheduler_config.json (the zoo ships model configs
# only): flow-matching shift, Flux's resolution-dependent shift, the prediction type.
SCHEDULERS = {
    "sd1.5": ({"steps_offset": 1, "skip_prk_steps": True, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
               "beta_end": 0.012}, "stable-diffusion-v1-5/stable-diffusion-v1-5"),
    "sd2.1": ({"prediction_type": "v_prediction", "clip_sample": False, "set_alpha_to_one": False,
               "steps_offset": 1}, "stabilityai/stable-diffusion-2-1"),
    "sdxl": ({}, "stabilityai/stable-diffusion-xl-base-1.0"),
    "sd3-medium": ({"shift": 3.0}, "stabilityai/stable-diffusion-3-medium-diffusers"),
    "sd3.5-large": ({"shift": 3.0}, "stabilityai/stable-diffusion-3.5-large"),
    "flux.1-dev": ({"use_dynamic_shifting": True, "shift": 3.0, "base_image_seq_len": 256,
                    "max_image_seq_len": 4096, "base_shift": 0.5, "max_shift": 1.15}, "black-forest-labs/FLUX.1-dev"),
    "flux.1-schnell": ({"shift": 1.0}, "black-forest-labs/FLUX.1-schnell"),
    "pixart-alpha": ({}, "PixArt-alpha/PixArt-XL-2-1024-MS"),
    "pixart-sigma": ({}, "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS"),
    "wan2.1-t2v-1.3b": ({"flow_shift": 3.0, "prediction_type": "flow_prediction", "use_flow_sigmas": True},
                        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"),
    "wan2.1-t2v-14b": ({"flow_shift": 3.0, "prediction_type": "flow_prediction", "use_flow_sigmas": True},
                       "Wan-AI/Wan2.1-T2V-14B-Diffusers"),
    "cogvideox-2b": ({"prediction_type": "v_prediction"}, "THUDM/CogVideoX-2b"),
    "cogvideox-5b": ({"prediction_type": "v_prediction"}, "THUDM/CogVideoX-5b"),
    "latte-1": ({}, "maxin-cn/Latte-1"),
    "dit-xl-2": ({}, "facebook/DiT-XL-2-256"),
    # v-prediction: HunyuanDiT's sampling (its repository's --predict-type v_prediction)
    # Mochi's sigmas are linear-quadratic and inverted (mochi.py turns them into the executor's
    # shifted flow sigmas: shift 1)
    "mochi-1": ({"shift": 1.0, "invert_sigmas": True}, "genmo/mochi-1-preview"),
    # SVD's EulerDiscreteScheduler predicts v (its Karras sigmas are the executor's DDIM steps here)
    "svd": ({"prediction_type": "v_prediction"}, "stabilityai/stable-video-diffusion-img2vid-xt"),
    "hunyuanvideo": ({"shift": 7.0}, "hunyuanvideo-community/HunyuanVideo"),
    "hunyuandit": ({"prediction_type": "v_prediction", "beta_schedule": "scaled_linear", "beta_end": 0.03,
                    "steps_offset": 1}, "Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers"),
    # the DDIMScheduler settings of the motion adapter's model card (diffusers AnimateDiff docs)
    "animatediff": ({"beta_schedule": "linear", "clip_sample": False, "steps_offset": 1,
                     "timestep_spacing": "linspace"}, "guoyww/animatediff-motion-adapter-v1-5-2 (model card)"),
}


def model_ids() -> tuple[str, ...]:
    """The zoo models whose denoiser class has an adapter (executor/diffusers/<family>.py)."""
    return tuple(sorted(SCHEDULERS))


def read_folder(folder: Path, model_id: str) -> PipelineConfigs:
    """A diffusers folder's configs: model_index.json and <component>/config.json (the
    tokenizers and the scheduler keep an empty dict when their files are absent)."""
    index = json.loads((folder / "model_index.json").read_text())
    comps = {}
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[1] is None:
            continue
        path = folder / name / ("scheduler_config.json" if name == "scheduler" else "config.json")
        cfg = json.loads(path.read_text()) if path.is_file() else {}
        comps[name] = (spec[0], spec[1], {k: v for k, v in cfg.items() if not k.startswith("_")})
    return PipelineConfigs(model_id, index.get("_class_name", ""), comps, str(folder))


def pipeline_configs(model_id: str) -> PipelineConfigs:
    """The configs of model_id: the zoo's shipped folder, its scheduler's from SCHEDULERS."""
    got = read_folder(ZOO_CONFIGS / model_id, model_id)
    sched, repo = SCHEDULERS[model_id]
    comps = dict(got.components)
    lib, cls, cfg = comps["scheduler"]
    comps["scheduler"] = (lib, cls, cfg or sched)
    return PipelineConfigs(model_id, got.pipeline, comps,
                           f"{got.source} (scheduler: scheduler_config.json of {repo}, executor table)")
