"""progress.py: bars on a terminal, none in a log file or pipe, none when the caller asks for quiet."""

from __future__ import annotations

import io

from isoadapt.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_bar_and_a_log_file_gets_nothing():
    terminal, log = Terminal(), io.StringIO()
    for _ in progress(range(3), desc="work", file=terminal):
        pass
    for _ in progress(range(3), desc="work", file=log):
        pass
    assert "work: 100%" in terminal.getvalue() and log.getvalue() == ""


def test_quiet_is_quiet_even_on_a_terminal():
    terminal = Terminal()
    for _ in progress(range(3), show=False, file=terminal):
        pass
    assert terminal.getvalue() == ""
