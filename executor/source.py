"""Where a job's denoiser, conditioning and latent layout come from: the model's diffusers
pipeline (executor/diffusers/pipeline.py) at the job's scale or from its weights folder.

    source_for(job, device, dtype) -> DiffusersSource

It answers what runtime.Runtime needs: the latent layout (channels, patch, video, latent
frames), the sampler schedule, the text conditioning (the pipeline's text encoders), a
fresh denoiser as an ordered block list (blocks.BlockModel), the VAE decode and the
per-component times (text encoders, VAE) a run reports.
"""
from __future__ import annotations

import math
import time

from .sampler import NoiseSchedule


def source_for(job, device, dtype) -> "DiffusersSource":
    return DiffusersSource(job, device, dtype)


class DiffusersSource:
    """A diffusers pipeline (executor/diffusers/pipeline.py); the denoiser is rebuilt for
    every plan that runs (strategies slice and drop its weights), the text encoders and the
    VAE are built once."""

    def __init__(self, job, device, dtype):
        from .diffusers.pipeline import Pipeline
        from .diffusers.legality import latent_frames
        self.job, self.device, self.dtype = job, device, dtype
        self.pipeline = Pipeline(job.model, job.scale, job.weights, job.seed, dtype, str(device),
                                 frames=latent_frames(job.model, job.frames), text_tokens=job.text_tokens,
                                 image_size=(job.height, job.width))
        p = self.pipeline
        self.video = p.video
        self.patch, self.flow = p.patch, p.flow
        self.latent_frames = latent_frames(job.model, job.frames)
        self.channels = p.latent_channels
        self.component_s: dict = {}
        p.pipe               # build the text encoders, tokenizers and VAE (untimed: not a stage)

    def schedule(self, steps: int) -> NoiseSchedule:
        cfg = self.pipeline.configs.config("scheduler")
        if not self.flow:
            pred = cfg.get("prediction_type", "epsilon")
            return NoiseSchedule(steps, flow=False, prediction="v_prediction" if pred == "v_prediction" else "epsilon")
        shift = cfg.get("shift", cfg.get("flow_shift", 1.0)) or 1.0
        if cfg.get("use_dynamic_shifting"):
            # FluxPipeline: mu from the image tokens; an exponential time shift by mu is the
            # shift exp(mu) of the sigmas
            from diffusers.pipelines.flux.pipeline_flux import calculate_shift
            tokens = (self.job.height // 16) * (self.job.width // 16)
            shift = math.exp(calculate_shift(tokens, cfg.get("base_image_seq_len", 256),
                                             cfg.get("max_image_seq_len", 4096), cfg.get("base_shift", 0.5),
                                             cfg.get("max_shift", 1.15)))
        return NoiseSchedule(steps, flow=True, shift=shift)

    def conditioning(self):
        t0 = time.perf_counter()
        cond = self.pipeline.encode(self.job.prompt, self.job.negative_prompt)
        self.component_s["text_encoders"] = time.perf_counter() - t0
        return cond

    def build_model(self):
        from .diffusers.families import build_denoiser
        return build_denoiser(self.pipeline, (self.job.height, self.job.width))

    def native_loop(self, plan):
        """diffusers' own Ulysses (native_cp.py) for the segments it applies to, else None."""
        import diffusers

        from .diffusers import native_cp
        pc = self.pipeline.configs
        if native_cp.applies(plan, self.job, getattr(diffusers, pc.cls(pc.denoiser))):
            return native_cp.NativeUlysses()
        return None

    def decode(self, latent):
        t0 = time.perf_counter()
        frames = self.pipeline.decode(latent)
        self.component_s["vae_decode"] = time.perf_counter() - t0
        return frames

    def describe(self) -> dict:
        return self.pipeline.describe()
