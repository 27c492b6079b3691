import pytest

from crm.tests.live_gunicorn import LiveGunicorn


@pytest.fixture
def live_gunicorn(transactional_db, tmp_path):
    """Start gunicorn servers with extra environment or arguments; all are stopped at the end."""
    started = []

    def start(env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> LiveGunicorn:
        server = LiveGunicorn(tmp_path / f"gunicorn-{len(started)}.log", env, args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
