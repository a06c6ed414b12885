"""OCPP 1.6 connector status -> the SDK's cable and component states.

A StatusNotification carries one of nine connector states (§4.9, §7.7). The gateway
needs two things from it: the SDK's `CableState`/`ComponentState` pair, and whether
energy can be flowing at all — many charge points send MeterValues only during a
transaction, so the last power reading would otherwise outlive the session that
produced it.

| OCPP status   | cable state    | component state | energy may flow |
|---------------|----------------|-----------------|-----------------|
| Available     | UNPLUGGED      | READY           | no              |
| Preparing     | EV_PLUGGED     | READY           | no              |
| Charging      | EV_LOCKED      | CHARGING        | yes             |
| SuspendedEV   | EV_LOCKED      | READY           | yes             |
| SuspendedEVSE | EV_LOCKED      | READY           | yes             |
| Finishing     | EV_PLUGGED     | NOT_READY       | no              |
| Reserved      | UNPLUGGED      | READY           | no              |
| Unavailable   | UNSPECIFIED    | NOT_READY       | no              |
| Faulted       | UNSPECIFIED    | ERROR           | yes (unknown)   |

Why these choices:
- SuspendedEV/SuspendedEVSE stay READY: SuspendedEVSE is what a limit of 0 A looks
  like, and the distributor must still see the EV as usable to raise the limit again.
  A transaction is running, so the cable is locked.
- Reserved holds the connector for one id tag; no EV is attached yet.
- Unavailable and Faulted say nothing about the cable. A fault may leave current
  flowing, so the last measurement is kept rather than assumed to be zero.
- Connector 0 (the charge point's main controller) only reports Available,
  Unavailable and Faulted; `main_controller_override` turns the last two into a
  component state that wins over the connector's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.model import CableState, ComponentState


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """What one OCPP connector status means for the gateway."""

    cable: CableState
    component: ComponentState
    energy_may_flow: bool


STATUS_TABLE: dict[str, ConnectorState] = {
    "Available": ConnectorState(CableState.UNPLUGGED, ComponentState.READY, False),
    "Preparing": ConnectorState(CableState.EV_PLUGGED, ComponentState.READY, False),
    "Charging": ConnectorState(CableState.EV_LOCKED, ComponentState.CHARGING, True),
    "SuspendedEV": ConnectorState(CableState.EV_LOCKED, ComponentState.READY, True),
    "SuspendedEVSE": ConnectorState(CableState.EV_LOCKED, ComponentState.READY, True),
    "Finishing": ConnectorState(CableState.EV_PLUGGED, ComponentState.NOT_READY, False),
    "Reserved": ConnectorState(CableState.UNPLUGGED, ComponentState.READY, False),
    "Unavailable": ConnectorState(CableState.UNSPECIFIED, ComponentState.NOT_READY, False),
    "Faulted": ConnectorState(CableState.UNSPECIFIED, ComponentState.ERROR, True),
}
"""The table in the module docstring, keyed by the exact OCPP status string."""

UNKNOWN_STATE = ConnectorState(CableState.UNSPECIFIED, ComponentState.UNKNOWN, True)
"""A status outside OCPP 1.6: nothing is known, so nothing is assumed to be zero."""

_BY_LOWER = {name.lower(): state for name, state in STATUS_TABLE.items()}


def connector_state(status: object) -> ConnectorState | None:
    """The mapping for an OCPP connector status, or None when it is not one.

    Matching ignores case, because sloppy firmwares send `charging` or `CHARGING`.
    """
    if not isinstance(status, str):
        return None
    return _BY_LOWER.get(status.strip().lower())


def main_controller_override(status: object) -> ComponentState | None:
    """The component state that a connector-0 status forces on every connector.

    Faulted -> ERROR and Unavailable -> NOT_READY; Available (or anything else)
    forces nothing and the connector's own status applies.
    """
    state = connector_state(status)
    if state is STATUS_TABLE["Faulted"] or state is STATUS_TABLE["Unavailable"]:
        return state.component
    return None
