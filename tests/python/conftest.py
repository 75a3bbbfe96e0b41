"""Fixtures of the Python binding's tests: a real exobusd on a bus of the test's own (its own
name and runtime directory), and the processes a test starts on it, every one stopped when
the test ends, passed or failed.

ctest (CMakeLists.txt here) sets EXOBUS_BUILD_DIR, the build whose exobusd and programs run,
and PYTHONPATH, where that build laid out the exobus package."""
import itertools
import os
import pathlib
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import exobus

HERE = pathlib.Path(__file__).resolve().parent
SOURCE_DIR = HERE.parent.parent
BUILD_DIR = pathlib.Path(os.environ.get("EXOBUS_BUILD_DIR", SOURCE_DIR / "build"))
_bus_numbers = itertools.count()


def terminate(popen):
    """SIGTERM, then SIGKILL if it is still there after 5 s; reaped either way."""
    popen.terminate()
    try:
        popen.wait(timeout=5)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


class Process:
    """A process started by a test; its output is read line by line as it comes."""

    def __init__(self, argv, env):
        self.popen = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1)
        self.output = []  # every line read so far
        self._unmatched = []  # read, and not returned by expect() or available_lines()
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def expect(self, text, timeout=10.0):
        """The first line of output not returned yet that contains `text` (lines before it
        stay for later calls); fails the test after `timeout` s."""
        for line in self._unmatched:
            if text in line:
                self._unmatched.remove(line)
                return line
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line with {text!r} within {timeout} s; output so far: {self.output}")
            if line is None:
                self._lines.put(None)
                pytest.fail(f"the process ended ({self.popen.wait()}) before printing {text!r}: {self.output}")
            self.output.append(line)
            if text in line:
                return line
            self._unmatched.append(line)

    def available_lines(self):
        """The lines not returned yet, without waiting."""
        lines, self._unmatched = self._unmatched, []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return lines
            if line is None:
                self._lines.put(None)  # still seen by expect()
                return lines
            self.output.append(line)
            lines.append(line)

    def signal(self, number):
        self.popen.send_signal(number)

    def wait(self, timeout=10.0):
        return self.popen.wait(timeout=timeout)

    def stop(self):
        if self.popen.poll() is None:
            terminate(self.popen)


class Bus:
    """A running exobusd and what the test connects or starts on its bus."""

    def __init__(self, application):
        self.name = f"py{os.getpid()}-{next(_bus_numbers)}"
        # Under /tmp, not pytest's deep tmp_path: a socket's path must stay under 108 bytes.
        self.runtime_dir = tempfile.mkdtemp(prefix="exobus-py.")
        self.env = dict(os.environ, EXOBUS_BUS=self.name, EXOBUS_RUNTIME_DIR=self.runtime_dir,
                        PYTHONUNBUFFERED="1")
        self._processes = []
        self._services = []
        log_path = pathlib.Path(self.runtime_dir, "exobusd.log")
        self._log = open(log_path, "w")
        self._daemon = subprocess.Popen(
            [BUILD_DIR / "daemon/exobusd/exobusd", "--config", application, "--bus", self.name,
             "--runtime-dir", self.runtime_dir, "--reset", "--remove-segment"],
            stdout=self._log, stderr=subprocess.STDOUT)
        socket = pathlib.Path(self.runtime_dir, f"{self.name}.sock")
        deadline = time.monotonic() + 10
        while not (socket.exists() and "serving bus" in log_path.read_text()):
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail(f"exobusd did not start: {log_path.read_text()}")
            time.sleep(0.02)

    def connect(self, service, **options):
        """This test process as an instance of `service` (stopped when the test ends)."""
        connected = exobus.connect(bus=self.name, service=service, runtime_dir=self.runtime_dir, **options)
        self._services.append(connected)
        return connected

    def start(self, *argv, env=None):
        """A program on this bus (it finds it in $EXOBUS_BUS and $EXOBUS_RUNTIME_DIR), with
        the environment of this process updated with `env`."""
        process = Process([str(arg) for arg in argv], {**self.env, **(env or {})})
        self._processes.append(process)
        return process

    def serve(self, role, *args, env=None):
        """A Python service of services/serve.py, once it says it is serving."""
        process = self.start(sys.executable, HERE / "services/serve.py", role, *args, env=env)
        process.expect("ready")
        return process

    def status(self):
        return subprocess.run([BUILD_DIR / "cli/exobus", "status"], env=self.env, capture_output=True,
                              text=True, check=True).stdout

    def close(self):
        for service in self._services:
            service.stop()
        for process in reversed(self._processes):
            process.stop()
        terminate(self._daemon)
        self._log.close()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


@pytest.fixture
def start_bus():
    """start_bus(application=this folder's application.yml) -> Bus; all closed at the end."""
    buses = []

    def start(application=HERE / "application.yml"):
        bus = Bus(application)
        buses.append(bus)
        return bus

    try:
        yield start
    finally:
        for bus in buses:
            bus.close()


@pytest.fixture
def bus(start_bus):
    return start_bus()
