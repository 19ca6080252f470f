"""Progress bars the way the libraries we build on draw them: full on a terminal, none when the output
goes to a log file or a pipe (tqdm's own `disable=None`: a 12 s run wrote a 40 KB log before), and none
when the caller asks for quiet."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress(iterable=None, show: bool = True, **options) -> tqdm:
    return tqdm(iterable, disable=None if show else True, **options)
