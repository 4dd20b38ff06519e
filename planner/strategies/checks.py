"""Constraint checks shared by several strategies."""
from __future__ import annotations

SEQ_KEYS = ("ulysses", "ring", "distrifusion", "sync_patch", "naive_patch")


def sequence_degree(plan) -> int:
    """How many slices the latent rows are cut into at once (patches of a pipeline included)."""
    n = 1
    for k in SEQ_KEYS:
        n *= plan.degree(k)
    if plan.degree("pipefusion") > 1:
        n *= plan.get("patches", plan.degree("pipefusion"))
    return n


def rows_divisible(plan, model) -> list[str]:
    """Sequence and patch methods split the latent by rows (xDiT: latent height % sp == 0)."""
    n = sequence_degree(plan)
    rows = model.latent_rows()
    if rows % n:
        return [f"the latent has {rows} rows of patches, not divisible into {n} slices "
                f"({plan}); change the height or the degrees"]
    return []


def stale_steps(plan, sc, key: str, warmup: int) -> list[str]:
    """Stale-activation methods need steps left after their synchronous warm-up."""
    if warmup >= sc.steps:
        return [f"{key}: warmup={warmup} leaves no asynchronous step out of {sc.steps}"]
    return []
