"""paradiff executor: runs a parallel plan for real with torch.distributed and measures it.

    diffusers/    the zoo models' real diffusers classes as block lists (one adapter per
                  class), their pipelines' text encoders and VAEs, --scale and --weights
    blocks.py     State, BlockModel, Conditioning: what the strategies see of a denoiser
    source.py     a job's denoiser, conditioning and latent layout (its diffusers pipeline)
    sampler.py    the denoising loop (DDIM / Euler flow matching, classifier-free guidance);
                  asks plan.plan_at(step) which strategy runs each step
    context.py    how one rank's layers see the image (attention, conv halos, group norms)
    strategies/   one module per plan key, the same names as planner/strategies/
    comm.py       the collectives, with a count of the bytes each rank sends
    runtime.py    process groups from planner.layout.layout_for(plan), one job on one rank
    procs.py      local ranks: start, watch, stop; they die with their launcher
    launch.py     starts the executor's ranks (procs, or torchrun's), collects their results
    measure.py    Measurement: measured vs predicted latency, speed-up, memory, fidelity
    cli.py        `python cli.py run`
"""
