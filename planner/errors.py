"""The errors that mean "bad input" (reported as one line, exit code 2), in one place."""
from __future__ import annotations

import json
from pathlib import Path


class UserError(ValueError):
    """Bad input (an option, a file, a plan string): the message is one line that names the
    value and what is accepted. Every error the CLI reports with exit code 2 derives from it
    (UsageError here, HardwareError, PlanError, ZooError where they are raised)."""


class UsageError(UserError):
    """A bad option value; the message names the value and what is accepted."""


def user_errors() -> tuple[type[Exception], ...]:
    return (UserError,)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path, source: str, error: type[Exception] = UsageError):
    """The JSON document at `path`, or `error` with one line: `source` (e.g. "cluster file
    X"), then what is wrong: not found, a directory, unreadable, or not valid JSON (NaN
    and Infinity included: Python reads them, JSON does not allow them)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{source}: not found") from None
    except IsADirectoryError:
        raise error(f"{source}: is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{source}: cannot be read ({type(e).__name__})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise error(f"{source}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except ValueError as e:
        raise error(f"{source}: not valid JSON ({e})") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply to be one of paradiff's documents") from None
