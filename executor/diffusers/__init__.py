"""Real diffusers model classes under the executor's strategies (`cli.py run --model ID`).

    configs.py    the published configs of every supported pipeline
    scale.py      tiny / small configs derived from them, one function per class family
    hooks.py      diffusers ModelHooks that route attention, 3x3 convs, GroupNorms and
                  row-parallel projections into the executor's ctx
    denoiser.py   a diffusers denoiser as the executor's ordered block list
    unet.py sd3.py flux.py pixart.py wan.py cogvideox.py latte.py dit.py hunyuandit.py
    hunyuanvideo.py mochi.py svd.py animatediff.py
                  one adapter per class family, with the planner's block names
"""
