"""Starts the real lossd binary on a free port for the client tests.

The binary is LOSSD_BINARY, else the debug build beside the package (.build/debug/lossd),
else the release build.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def lossd_binary():
    candidates = [os.environ.get("LOSSD_BINARY", ""), os.path.join(ROOT, ".build", "debug", "lossd"),
                  os.path.join(ROOT, ".build", "release", "lossd")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    pytest.skip("no lossd binary: build it (swift build) or set LOSSD_BINARY")


class Server:
    def __init__(self, *arguments):
        self.data = tempfile.mkdtemp(prefix="lossd-client-test-")
        self.process = subprocess.Popen(
            [lossd_binary(), "--port", "0", "--data-dir", self.data, "--log-level", "error", *arguments],
            stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"lossd did not start: {line!r}")
        self.url = line.strip().rsplit(" ", 1)[1]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    running = Server()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def keyed_server():
    running = Server("--api-key", "client-test-key")
    yield running
    running.stop()
