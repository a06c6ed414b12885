"""OCPP frame check cost: the gateway's pre-check of every frame against the library's parse.

Run from the repository root: `python -m benchmarks.ocpp_frames` (a few seconds).

Every frame a charge point sends is checked (`framing.check_frame`: nesting depth,
JSON, message shape) before the `ocpp` library parses it again. This prints, in one
run, the CPU per frame of the check and of the library's own `unpack` for a typical
MeterValues frame (ratio = the overhead the check adds), and the check's cost for
hostile frames (5000-deep nesting, which the library cannot parse at all, and a
64 KiB string). Figures only: they depend on the machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ocpp.messages import unpack

from gateway.adapters.ocpp.framing import check_frame

METER_VALUES = json.dumps(
    [2, "f3a1c2d4-0000-4000-8000-000000000001", "MeterValues", {
        "connectorId": 1, "transactionId": 1234,
        "meterValue": [{"timestamp": "2026-01-01T12:00:00Z", "sampledValue": [
            {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
            *({"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": p}
              for p in ("L1", "L2", "L3")),
            *({"value": "230.0", "measurand": "Voltage", "unit": "V", "phase": p}
              for p in ("L1-N", "L2-N", "L3-N")),
            {"value": "12345", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        ]}],
    }]
)  # fmt: skip
DEEP = "[" * 5000 + "]" * 5000
BIG_STRING = json.dumps([2, "id", "DataTransfer", {"vendorId": "x", "data": "a" * 65000}])


def per_call(func: Callable[[], object], rounds: int) -> float:
    """CPU seconds per call, best of five runs of `rounds` calls."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(rounds):
            func()
        best = min(best, (time.process_time() - start) / rounds)
    return best


def main() -> None:
    check = per_call(lambda: check_frame(METER_VALUES, "1.6"), 5000)
    library = per_call(lambda: unpack(METER_VALUES), 5000)
    print(f"MeterValues frame ({len(METER_VALUES)} B): check {check * 1e6:.1f} us, "
          f"library unpack {library * 1e6:.1f} us, check/unpack {check / library:.2f}")  # fmt: skip
    deep = per_call(lambda: check_frame(DEEP, "1.6"), 200)
    print(f"5000-deep nesting ({len(DEEP)} B): check {deep * 1e6:.1f} us (refused unparsed)")
    big = per_call(lambda: check_frame(BIG_STRING, "1.6"), 200)
    print(f"64 KiB string frame: check {big * 1e6:.1f} us")


if __name__ == "__main__":
    main()
