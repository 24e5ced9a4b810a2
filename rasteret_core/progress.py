"""Progress of long operations: a tqdm bar in a terminal, log lines otherwise.

    >>> with Progress(total=len(items), desc="headers") as bar:
    ...     for item in items:
    ...         ...
    ...         bar.update()

In a terminal (stderr is a TTY) a tqdm bar is shown; elsewhere (Dagster, CI, notebooks
writing to files) progress is logged at INFO about every 10 % so logs stay short.
``enabled=False`` silences both.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger("rasteret_core.progress")


class Progress:
    """Counts steps of one operation and shows them as a bar or as log lines."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        enabled: bool = True,
        unit: str = "it",
        logger: logging.Logger | None = None,
        use_tqdm: bool | None = None,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.enabled = enabled
        self._log = logger or log
        self._next_log = 0
        self._bar: Any = None
        self._postfix: dict[str, Any] = {}
        if not enabled:
            return
        if use_tqdm is None:
            use_tqdm = _stderr_is_tty()
        if use_tqdm:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False)
        else:
            self._log.info("%s: started (%s %s)", desc, total if total is not None else "?", unit)
            self._advance_log_mark()

    def update(self, n: int = 1) -> None:
        """Record ``n`` more finished steps."""
        self.n += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
        elif self.n >= self._next_log and (self.total is None or self.n < self.total):
            self._log.info("%s: %s", self.desc, self._status())
            self._advance_log_mark()

    def set_postfix(self, **values: Any) -> None:
        """Extra values shown next to the count (e.g. ``failed=2``)."""
        self._postfix.update(values)
        if self.enabled and self._bar is not None:
            self._bar.set_postfix(self._postfix, refresh=False)

    def close(self) -> None:
        """Finish: close the bar, or log the final count."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._log.debug("%s: %s", self.desc, self._status())
        else:
            self._log.info("%s: done, %s", self.desc, self._status())
        self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _status(self) -> str:
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        extra = ", ".join(f"{k}={v}" for k, v in self._postfix.items())
        return f"{count} {self.unit}" + (f" ({extra})" if extra else "")

    def _advance_log_mark(self) -> None:
        step = max(1, (self.total or 10) // 10)
        self._next_log = self.n + step


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
