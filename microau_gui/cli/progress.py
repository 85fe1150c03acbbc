"""The command line's progress bars: one tqdm bar on stderr, shown only on a terminal.

Owns: `ProgressBar`. May import tqdm and the standard library.

Every long command (analyze, spot, import, train, eval, finetune, synth) reports through the
pipelines' `progress(done, total)` callback (`core.progress.Progress`); a `ProgressBar` is such a
callback. The bar opens on the first report, so a command that fails before any work prints no
empty bar, and never when stderr is not a terminal (logs, pipes, tests) or `--no-progress` says
so. `stage(desc, unit)` starts a new bar for the next phase (preparing pairs, then each training
stage); `note(text)` shows the phase's latest message beside the bar.
"""

from __future__ import annotations

import os
import sys


class ProgressBar:
    """A `progress(done, total)` callback drawing one tqdm bar; a context manager that closes it."""

    def __init__(self, desc: str, unit: str = "it", *, enabled: bool = True):
        self.desc = desc
        self.unit = unit
        # torchrun workers: only rank 0 draws (every rank reports the same steps)
        self.enabled = enabled and sys.stderr.isatty() and os.environ.get("RANK", "0") == "0"
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr, leave=False)
        self._bar.total = total
        self._bar.update(done - self._bar.n)

    def stage(self, desc: str, unit: str | None = None) -> None:
        """Close the current bar; the next report opens one named `desc`."""
        if desc != self.desc or unit not in (None, self.unit):
            self.close()
            self.desc = desc
            self.unit = unit or self.unit

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
