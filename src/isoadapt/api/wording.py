"""Errors in a Python caller's terms. The checks the API shares with the command line (TrainConfig's
validation, model resolution, run folders, exports) name settings as flags, `--epochs 0: must be ...`;
a Python caller passed `epochs=0`. `python_terms` renders such a message in argument names, and
`speaks_python` applies it to every InputError leaving a public API function: the one place the wording
is routed, so a check written once serves both surfaces and a new check needs no second message. The
command line calls these functions too (inside `errors.command_line()`): there the flags stay."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

from isoadapt.errors import InputError, on_the_command_line

F = TypeVar("F", bound=Callable)
_SUBJECT = re.compile(r"(^|; )--(\w+) (.+?): ")  # what a message is about: "--name value: what is wrong"
_FLAG = re.compile(r"--(\w+)")


def _value(token: str) -> str:
    """A flag's value as Python would write it: numbers and booleans bare, anything else quoted."""
    if token in ("true", "false"):
        return token.capitalize()
    try:
        float(token)
    except ValueError:
        return repr(token)
    return token


def python_terms(message: str, renamed: dict[str, str] | None = None) -> str:
    """`--epochs 0: ...` -> `epochs=0: ...`; a flag elsewhere in the message -> its argument name.
    `renamed` maps a flag to the argument that carries it in this call (`run_dir` -> `folder`)."""
    names = renamed or {}

    def subject(match: re.Match) -> str:
        name = names.get(match[2], match[2])
        return f"{match[1]}{name}={_value(match[3])}: "

    return _FLAG.sub(lambda m: names.get(m[1], m[1]), _SUBJECT.sub(subject, message))


def speaks_python(renamed: dict[str, str] | None = None) -> Callable[[F], F]:
    """Decorate a public API function: its InputErrors name Python arguments, never command-line flags."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except InputError as err:
                if on_the_command_line():  # the command line calls the API too: its users typed flags
                    raise
                raise InputError(python_terms(str(err), renamed)) from err.__cause__

        return wrapper  # type: ignore[return-value]

    return decorate
