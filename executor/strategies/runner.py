"""What the executor registers for one planner strategy (planner/strategies, same key)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Runner:
    """How a strategy runs: its step loop (a class with model(setup) and run(setup, x,
    steps)) if it owns the denoising loop (planner Strategy.owns_loop), else the ctx its
    layers see (ctx(setup), None: the plain ctx, which carries the TP group); strategies
    that only choose a rank's samples (cfg, dp) need neither: runtime.Setup applies them."""

    key: str
    loop: type | None = None
    ctx: Callable | None = None
