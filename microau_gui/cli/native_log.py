"""Filters the log lines native libraries write straight to file descriptor 2.

Owns: `filtered_native_stderr`. May import only the standard library.

MediaPipe's C++ graphs (absl logging, from their own threads, at any time) and libpng print
INFO/WARNING lines that bury the one-line `error: ...` a user needs, and absl ignores the
usual environment switches. While the context is active, fd 2 is a pipe read by a thread that
forwards every line except the known noise to the real stderr, so Python errors and real native
errors still get through.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager

_NOISE = re.compile(
    rb"^(?:[WI]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\]"  # absl W/I lines
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|libpng warning: iCCP)"
)


@contextmanager
def filtered_native_stderr():
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not _NOISE.match(line):
                    os.write(real_stderr, line)

    thread = threading.Thread(target=forward, name="native-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real_stderr, 2)  # closes the pipe's last write end, so the reader sees EOF
        thread.join(timeout=5)
        os.close(real_stderr)
