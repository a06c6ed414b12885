"""Config of grid meters (`[[meters]]`) and a pool's `grid`, through the real command
line: valid files resolve with their defaults, mistakes are refused with exit status 78
and one line naming the key."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from gateway.config import EX_CONFIG, config_from_dict
from gateway.core.headroom import GridLimits
from gateway.meters.factory import build_meter, grid_limits, open_meter
from gateway.meters.modbus import ModbusMeter, ModbusTcpMeter
from gateway.meters.mqtt import MqttMeter
from tests.test_config import run_check, write

CHARGERS = """
[[chargers]]
id = "bay-1"
adapter = "simulated"

[[chargers]]
id = "bay-2"
adapter = "simulated"
"""

VALID = (
    CHARGERS
    + """
[[meters]]
id = "grid"
adapter = "modbus"
profile = "eastron-sdm630"
host = "192.0.2.10"
unit_id = 2

[[meters]]
id = "sub"
adapter = "mqtt"
topic = "home/meter/sub"
max_age = 10.0
phases = [2, 3, 1]

[[pools]]
name = "garage"
chargers = ["bay-1", "bay-2"]
phase_limit = 25.0
grid = { meter = "grid", fuse = 35.0, margin = 1.5 }
"""
)


def test_valid_meters_resolve_with_defaults(tmp_path: Path) -> None:
    result = run_check(write(tmp_path, VALID))
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    grid, sub = resolved["meters"]
    assert grid["profile"] == "eastron-sdm630" and grid["port"] == 502
    assert (grid["poll_interval"], grid["timeout"], grid["max_age"]) == (1.0, 1.0, 5.0)
    assert grid["phases"] == [1, 2, 3] and grid["topic"] is None
    assert (sub["adapter"], sub["topic"], sub["max_age"], sub["phases"]) == (
        "mqtt",
        "home/meter/sub",
        10.0,
        [2, 3, 1],
    )
    assert resolved["pools"][0]["grid"] == {
        "meter": "grid",
        "fuse": 35.0,
        "margin": 1.5,
        "fallback_current": None,
    }


def test_no_meters_is_fine_and_the_default_pool_has_no_grid(tmp_path: Path) -> None:
    result = run_check(write(tmp_path, CHARGERS))
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["meters"] == [] and resolved["pools"][0]["grid"] is None


def test_meters_from_the_environment(tmp_path: Path) -> None:
    meters = [{"id": "grid", "adapter": "mqtt", "topic": "x/y"}]
    result = run_check(write(tmp_path, CHARGERS), {"EVGW_METERS": json.dumps(meters)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["meters"][0]["topic"] == "x/y"


MODBUS = '[[meters]]\nid = "grid"\nadapter = "modbus"\n'
MQTT = '[[meters]]\nid = "grid"\nadapter = "mqtt"\n'
POOL = '[[pools]]\nname = "garage"\nchargers = ["bay-1"]\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            POOL + 'grid = { meter = "nope", fuse = 35.0 }\n' + MQTT + 'topic = "a/b"\n',
            "pools[0] ('garage').grid.meter: unknown meter 'nope' (meters: grid)",
        ),
        (
            POOL + 'grid = { meter = "grid", fuse = 35.0 }\n',
            "pools[0] ('garage').grid.meter: unknown meter 'grid' (meters: none configured)",
        ),
        (
            POOL + 'grid = { meter = "grid", fuse = 1.0, margin = 2.0 }\n' + MQTT + 'topic = "a"\n',
            "pools[0] ('garage').grid: fuse 1 A must be above margin 2 A",
        ),
        (
            POOL + 'grid = { meter = "grid", fuse = 6.0, margin = 6.0 }\n' + MQTT + 'topic = "a"\n',
            "pools[0] ('garage').grid: fuse 6 A must be above margin 6 A",
        ),
        (
            POOL
            + 'grid = { meter = "grid", fuse = 16.0, fallback_current = 16.0 }\n'
            + MQTT
            + 'topic = "a"\n',
            "fallback_current 16 A is above fuse - margin (15 A)",
        ),
        (
            POOL + 'grid = { meter = "grid", fuse = -35.0 }\n' + MQTT + 'topic = "a"\n',
            "pools[0] ('garage').grid.fuse: Input should be greater than 0",
        ),
        (
            POOL
            + 'grid = { meter = "grid", fuse = 35.0 }\n'
            + '[[pools]]\nname = "other"\nchargers = ["bay-2"]\n'
            + 'grid = { meter = "grid", fuse = 35.0 }\n'
            + MQTT
            + 'topic = "a"\n',
            "pools[1] ('other').grid.meter: meter 'grid' already bounds pool 'garage'",
        ),
        (MODBUS + 'host = "10.0.0.5"\n', "meters[0] ('grid'): adapter \"modbus\" needs a profile"),
        (
            MODBUS + 'profile = "eastron-sdm630"\n',
            "meters[0] ('grid'): adapter \"modbus\" needs host (TCP) or serial (RTU)",
        ),
        (
            MODBUS + 'profile = "no-such-meter"\nhost = "10.0.0.5"\n',
            "unknown meter profile 'no-such-meter'; known: abb-b23, carlo-gavazzi-em24, "
            "eastron-sdm630",
        ),
        (
            MODBUS + 'profile = "alfen-eve"\nhost = "10.0.0.5"\n',  # a charger profile
            "unknown meter profile 'alfen-eve'",
        ),
        (
            MODBUS + 'profile = "abb-b23"\nhost = "h"\npoll_interval = 5.0\n',
            "max_age 5 s must be longer than poll_interval 5 s",
        ),
        (
            MODBUS + 'profile = "abb-b23"\nhost = "h"\nserial = { port = "/dev/ttyUSB0" }\n',
            "give host (TCP) or serial (RTU), not both",
        ),
        (
            MODBUS + 'profile = "abb-b23"\nhost = "h"\ntopic = "a/b"\n',
            'topic is for adapter "mqtt"',
        ),
        (MQTT, 'adapter "mqtt" needs the topic'),
        (MQTT + 'topic = "meters/+/state"\n', "must be one topic: no wildcards"),
        (MQTT + 'topic = "a"\nhost = "10.0.0.5"\n', 'host: only for adapter "modbus"'),
        (
            MQTT + 'topic = "a"\nport = 502\npoll_interval = 2.0\n',
            'port, poll_interval: only for adapter "modbus"',
        ),
        (
            MQTT + 'topic = "ev-gateway/meters/grid/state"\n',
            "meters[0].topic: 'ev-gateway/meters/grid/state' is under the gateway's own base",
        ),
        (MQTT + 'topic = "a"\nphases = [1, 1, 2]\n', "must list the grid phases 1, 2, 3 once"),
        (MQTT + 'topic = "a"\nphases = [1, 2]\n', "meters[0] ('grid').phases"),
        (MQTT + 'topic = "a"\nmax_age = 0\n', "meters[0] ('grid').max_age"),
        (MQTT + 'topic = "a"\nadress = "x"\n', "meters[0] ('grid').adress: unknown key"),
        (
            MQTT + 'topic = "a"\n' + MQTT + 'topic = "b"\n',
            "meters[1].id: duplicate meter id 'grid'",
        ),
        (
            MQTT + 'topic = "a"\n[[meters]]\nid = "g2"\nadapter = "mqtt"\ntopic = "a"\n',
            "meters[1].topic: 'a' is used by another meter",
        ),
        ('[[meters]]\nid = "grid"\nadapter = "sunspec"\n', "meters[0] ('grid').adapter"),
    ],
)
def test_mistakes_are_refused_with_exit_78(tmp_path: Path, extra: str, message: str) -> None:
    result = run_check(write(tmp_path, CHARGERS + extra))
    assert result.returncode == EX_CONFIG, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ev-gateway: invalid configuration: ")


async def test_factory_builds_each_adapter_and_the_pool_limits() -> None:
    config = config_from_dict(
        tomllib.loads(
            VALID
            + '[[meters]]\nid = "bus"\nadapter = "modbus"\nprofile = "carlo-gavazzi-em24"\n'
            + 'serial = { port = "/dev/null-meter-bus", parity = "N" }\n'
        )
    )
    grid = build_meter(config.meter("grid"))
    assert isinstance(grid, ModbusTcpMeter)
    assert (grid.host, grid.port, grid.unit_id, grid.profile.name) == (
        "192.0.2.10",
        502,
        2,
        "eastron-sdm630",
    )
    await grid.close()
    async with open_meter(config.meter("sub")) as sub:
        assert isinstance(sub, MqttMeter)
        assert (sub.topic, sub.phases) == ("home/meter/sub", (2, 3, 1))
    bus_meter = build_meter(config.meter("bus"))
    assert isinstance(bus_meter, ModbusMeter) and bus_meter.unit_id == 1
    assert bus_meter.transport.label == "/dev/null-meter-bus"
    await bus_meter.close()
    limits = grid_limits(config, config.pools[0])
    assert limits == GridLimits(
        fuse=35.0, margin=1.5, max_age=5.0, phase_limit=25.0, fallback_current=None
    )
    assert limits is not None and limits.fallback == 6.0
    no_grid = config.pools[0].model_copy(update={"grid": None})
    assert grid_limits(config, no_grid) is None
