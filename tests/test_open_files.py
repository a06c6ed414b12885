"""The daemon raises its open-files limit for a large site (in a child process, whose
limits the test may lower without touching the test run's own)."""

from __future__ import annotations

import json
import subprocess
import sys

from gateway.open_files import SPARE, needed

CHILD = """
import json, logging, resource, sys
logging.basicConfig(stream=sys.stderr)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}))
from gateway.open_files import ensure_open_files
now = ensure_open_files({want})
print(json.dumps([now, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
"""


def _child(want: int, hard: int) -> tuple[list[int], str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(want=want, hard=hard)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(done.stdout), done.stderr


def test_the_soft_limit_is_raised_to_what_the_site_needs() -> None:
    limits, errors = _child(needed(3000), 8192)
    assert limits == [3000 + SPARE, 3000 + SPARE]
    assert errors == ""


def test_a_hard_limit_too_low_is_named_once_and_used_whole() -> None:
    limits, errors = _child(5000, 1024)
    assert limits == [1024, 1024]
    assert errors.count("LimitNOFILE") == 1


def test_a_limit_high_enough_is_left_alone() -> None:
    limits, _ = _child(100, 1024)
    assert limits == [256, 256]
