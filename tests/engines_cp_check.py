"""Run by tests/test_engines.py under torchrun (2 gloo ranks, CPU): the ContextParallelConfig
the diffusers engine emits (JSON in $CONF) on a tiny random FluxTransformer2DModel, $TXT text
tokens; prints the largest difference from the serial output on rank 0."""
import json
import os
import sys

import torch
import torch.distributed as dist
from diffusers import ContextParallelConfig, FluxTransformer2DModel


def main():
    torch.accelerator.device_count = lambda: 1   # diffusers places rank % device_count (0 on CPU)
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    m = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                               num_attention_heads=4, joint_attention_dim=32, pooled_projection_dim=32,
                               guidance_embeds=False, axes_dims_rope=(4, 6, 6)).eval()
    g = torch.Generator().manual_seed(1)
    h = w = 8
    txt = int(os.environ["TXT"])
    img_ids = torch.zeros(h * w, 3)
    img_ids[:, 1], img_ids[:, 2] = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
    args = dict(hidden_states=torch.randn(1, h * w, 16, generator=g), encoder_hidden_states=torch.randn(1, txt, 32, generator=g),
                pooled_projections=torch.randn(1, 32, generator=g), timestep=torch.tensor([0.5]), img_ids=img_ids,
                txt_ids=torch.zeros(txt, 3), return_dict=False)
    with torch.no_grad():
        ref = m(**args)[0]
        m.enable_parallelism(config=ContextParallelConfig(**json.loads(os.environ["CONF"])))
        out = m(**args)[0]
    if dist.get_rank() == 0:
        print(f"max_abs_diff {(out - ref).abs().max().item():.3e}", flush=True)
    # Both ranks leave together, and without the interpreter's teardown: on a loaded 2-core
    # machine a rank sometimes aborted at exit ("terminate called without an active
    # exception", exit -6), a gloo thread of the groups diffusers' enable_parallelism made
    # outliving the destructors, after the result was already printed.
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
