"""A pytest plugin (loaded by the root conftest.py): a test that runs long says so.

The suite prints one dot per test; a test that takes minutes (the Schemathesis run, the browser,
the bench-like plan checks) would leave the terminal silent. After STILL_RUNNING_AFTER seconds,
then every STILL_RUNNING_EVERY seconds, one line names the test and how long it has run.
"""

from __future__ import annotations

import threading
import time

STILL_RUNNING_AFTER = 20.0
STILL_RUNNING_EVERY = 60.0


class StillRunning:
    def __init__(self, config):
        self.config = config
        self.stop: threading.Event | None = None

    def pytest_runtest_logstart(self, nodeid, location):
        self.stop = threading.Event()
        threading.Thread(target=self._watch, args=(nodeid, self.stop), daemon=True).start()

    def pytest_runtest_logfinish(self, nodeid, location):
        if self.stop is not None:
            self.stop.set()

    def _watch(self, nodeid: str, stop: threading.Event) -> None:
        started = time.monotonic()
        wait = STILL_RUNNING_AFTER
        while not stop.wait(wait):
            self._say(f"… still running after {time.monotonic() - started:.0f} s: {nodeid}")
            wait = STILL_RUNNING_EVERY

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.getplugin("terminalreporter")
        capture = self.config.pluginmanager.getplugin("capturemanager")
        if reporter is None:
            return
        if capture is None:
            reporter.write("\n" + line + "\n")
            return
        with capture.global_and_fixture_disabled():  # the test's own output stays captured
            reporter.write("\n" + line + "\n")


def pytest_configure(config):
    config.pluginmanager.register(StillRunning(config), "crm-still-running")
