"""A reward service started by RewardService exits when its launcher is SIGKILLed (a killed run
must not leave a service behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.integration

LAUNCHER = """
import sys, time
from reward.service.launch import RewardService
svc = RewardService(workers=1)
svc.start()
print(svc.pid, flush=True)
time.sleep(600)
"""


def test_service_exits_when_its_launcher_is_killed():
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, text=True)
    try:
        service_pid = int(launcher.stdout.readline())
        service = psutil.Process(service_pid)
        assert service.is_running()
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=30)
        deadline = time.monotonic() + 30
        while service.is_running() and service.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the service outlived its launcher"
            time.sleep(0.2)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
