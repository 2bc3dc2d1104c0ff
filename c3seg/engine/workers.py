"""Worker processes that leave Ctrl-C to the main process.

Ctrl-C sends SIGINT to every process of the terminal's foreground group: without care, each pool
worker prints its own KeyboardInterrupt traceback (often from the middle of an import) before the
main process can say, in one line, that the same command resumes (c3seg.cli.user_error).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def children_ignore_ctrl_c() -> Iterator[None]:
    """Processes started inside the block ignore SIGINT for good: an ignored signal stays ignored
    through fork and exec, and Python keeps it so (a blocked one would not: spawn clears the mask).
    Start the processes, and nothing else, in the block: a Ctrl-C during it is not seen."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
