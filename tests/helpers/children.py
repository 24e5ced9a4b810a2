"""Child processes whose memory figures are their own.

On Linux a process's peak resident size (``ru_maxrss``, which libFuzzer's ``-rss_limit_mb`` and
our children's memory figures read) survives ``execve``, and Python's ``subprocess`` starts
children with ``vfork``, so a child begins with its PARENT's peak: a test worker that earlier
held 1 GiB hands that figure to every child it starts, and a 1 GiB limit trips before the child
allocates anything. A shell that forks the real command (rather than exec-ing it) gives it a
fresh process whose peak starts at the shell's few MiB.
"""

from __future__ import annotations

from typing import Sequence


def with_own_peak_rss(command: Sequence[str]) -> list[str]:
    """``command`` wrapped so the process it runs starts with its own peak RSS, not ours.

    The trailing ``exit`` keeps the shell from exec-ing the command in its own process.
    """
    return ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command]
