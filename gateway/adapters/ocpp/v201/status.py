"""OCPP 2.0.1 connector status and charging state -> the 1.6 status the state understands.

2.0.1 splits what 1.6 says in one status: StatusNotification only knows Available,
Occupied, Reserved, Unavailable and Faulted, and whether energy flows comes from
`TransactionEvent.transactionInfo.chargingState`. The gateway folds both into the 1.6
names that `status_map` already maps to cable and component states (pure code):

| 2.0.1                             | as 1.6        |
|-----------------------------------|---------------|
| Available / Reserved              | Available / Reserved |
| Unavailable / Faulted             | Unavailable / Faulted |
| Occupied (no charging state yet)  | Preparing     |
| chargingState EVConnected         | Preparing     |
| chargingState Charging            | Charging      |
| chargingState SuspendedEV / EVSE  | SuspendedEV / SuspendedEVSE |
| chargingState Idle                | no change     |

An Occupied that arrives while a charging state is known (a triggered
StatusNotification in the middle of a session) keeps the charging state, and a
transaction's end forgets it.
"""

from __future__ import annotations

CONNECTOR_STATUS = {
    "available": "Available",
    "occupied": "Preparing",
    "reserved": "Reserved",
    "unavailable": "Unavailable",
    "faulted": "Faulted",
}
CHARGING_STATE = {
    "evconnected": "Preparing",
    "charging": "Charging",
    "suspendedev": "SuspendedEV",
    "suspendedevse": "SuspendedEVSE",
}


class EvseStatus:
    """The 1.6-equivalent status of each EVSE of one charging station."""

    def __init__(self) -> None:
        self._charging: dict[int, str] = {}

    def connector_status(self, evse_id: int, status: object) -> object:
        """The status to report for a StatusNotification (unknown ones pass through)."""
        name = CONNECTOR_STATUS.get(status.strip().lower()) if isinstance(status, str) else None
        if name is None:
            return status
        if name == "Preparing":
            return self._charging.get(evse_id, name)
        self._charging.pop(evse_id, None)
        return name

    def charging_state(self, evse_id: int, state: object) -> str | None:
        """The status to report for a chargingState, or None when it changes nothing."""
        name = CHARGING_STATE.get(state.strip().lower()) if isinstance(state, str) else None
        if name is not None:
            self._charging[evse_id] = name
        return name

    def transaction_ended(self, evse_id: int) -> None:
        """The transaction on this EVSE ended: its charging state no longer holds."""
        self._charging.pop(evse_id, None)
