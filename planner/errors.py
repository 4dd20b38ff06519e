"""The errors that mean "bad input" (reported as one line, exit code 2), in one place."""
from __future__ import annotations


class UsageError(ValueError):
    """A bad option value; the message names the value and what is accepted."""


def user_errors() -> tuple[type[Exception], ...]:
    from .hardware import HardwareError
    from .plan import PlanError
    from .zoo import ZooError
    return (UsageError, HardwareError, PlanError, ZooError)
