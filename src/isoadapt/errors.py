"""How isoadapt fails: every failure a user can cause or meet is one line, never a traceback.

InputError: bad input or an unusable setting or path (exit 2). Interrupted: Ctrl-C (or SIGTERM), with
where the work was kept (exit 130); a KeyboardInterrupt, so that Python's `except Exception` never
swallows it. Failed: anything else that stopped a command, with where the work was kept (exit 1;
`--debug` shows the traceback behind it).
"""

from __future__ import annotations

import contextvars
import errno
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

NOTHING_KEPT = "nothing was kept"  # what a failure says when it removed everything it had started
DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
OS_ERROR_IN_TEXT = re.compile(r"os error (\d+)|\[Errno (\d+)\]")  # how LanceDB / safetensors name the cause


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


class InputError(Exception):
    """Bad input: a missing or malformed file, an invalid record, or an invalid setting.

    The message names the file (or flag), the record, and what is wrong, on one line.
    """

    def __init__(self, message: str):
        super().__init__(_one_line(message))


class Interrupted(KeyboardInterrupt):
    """The user pressed Ctrl-C (or sent SIGTERM); the message says what was kept and where. It stays a
    KeyboardInterrupt: a grid search's `except Exception: continue` must not start the next fit."""

    def __init__(self, message: str):
        super().__init__(_one_line(message))


class Failed(Exception):
    """A command stopped for a reason that is not its input; the message says what was kept and where."""

    def __init__(self, message: str):
        super().__init__(_one_line(message))


def describe(err: BaseException) -> str:
    """One line for any exception: the file and the system's reason for an OSError, else type and text."""
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return _one_line(f"{where}{err.strerror}")
    if isinstance(err, (InputError, Interrupted, Failed)):
        return str(err)
    return _one_line(f"{type(err).__name__}: {err}")


def disk_error(err: BaseException) -> str | None:
    """The system's reason when a write failed on the disk (full, `ulimit -f`, read-only, no permission), from
    an OSError or from the text of a library's own error type (LanceDB and safetensors raise no OSError, but
    name the os error); None for any other failure."""
    if isinstance(err, OSError):
        return err.strerror if err.errno in DISK_ERRNOS else None
    found = OS_ERROR_IN_TEXT.search(str(err))
    code = int(found.group(1) or found.group(2)) if found else None
    return os.strerror(code) if code in DISK_ERRNOS else None


def failure(err: Exception, kept: str) -> Exception:
    """The exception to raise after cleaning up: a file-system problem stays the user's to fix (exit 2). Bad
    input that stopped work midway still names what was kept and where."""
    if isinstance(err, InputError):
        return err if kept == NOTHING_KEPT else InputError(f"{err}; {kept}")
    if isinstance(err, OSError):
        return InputError(f"{describe(err)}; {kept}")
    if disk_error(err):  # a library's write that hit a full disk: the user's to fix, like an OSError
        return InputError(f"{disk_error(err)} ({type(err).__name__}); {kept}")
    return Failed(f"{describe(err)}; {kept}")


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (kill, `timeout`, a scheduler's preemption) stops work the way Ctrl-C does: the same
    clean-up of staging folders and temporary files, the same message. The previous handler comes back
    after; outside the main thread (where Python allows no handler) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_COMMAND_LINE = contextvars.ContextVar("isoadapt_command_line", default=False)


@contextmanager
def command_line() -> Iterator[None]:
    """Marks the work of one command: its messages name flags (`--epochs`); the same checks called from
    Python name arguments (`epochs=`, see isoadapt.api.wording)."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def on_the_command_line() -> bool:
    return _COMMAND_LINE.get()
