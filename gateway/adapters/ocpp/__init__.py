"""OCPP 1.6J: the gateway as a central system that charge points connect to.

`OcppCentralSystem` runs the websocket server; `OcppCharger` is the `Charger` adapter
for one configured charge point. The daemon owns the central system and takes the
chargers from it (`central.charger(id)`).
"""

from gateway.adapters.ocpp.central_system import OcppCentralSystem
from gateway.adapters.ocpp.charge_point import OcppCharger

__all__ = ["OcppCentralSystem", "OcppCharger"]
