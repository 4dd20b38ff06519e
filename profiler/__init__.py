"""Hardware profiler: measures the local device and links and writes a hardware profile
(hw_profiles/local.json by default) that the planner's cost model reads instead of the
datasheet priors (planner/profile_io.py loads it).

- profiler.timing:  timing of one op (warm-up, synchronisation, median of repeats), progress bar
- profiler.device:  which device to profile and its GpuSpec id, provenance
- profiler.compute: per op class benchmarks (GEMM, conv, attention, norms, elementwise)
- profiler.comm:    collectives between local processes on torch.distributed
- profiler.fit:     efficiency and alpha-beta fits, monotone communication curves
- profiler.run:     the whole run -> profile document
- profiler.model:   a model's own blocks, text encoders and VAE on its diffusers classes (`profile --model`)
- profiler.model_cli: `profile --model` from the command line (which file, checks, then measuring)
- profiler.cli:     the `cli.py profile` command
"""
