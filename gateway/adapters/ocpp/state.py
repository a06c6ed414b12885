"""What a charge point has reported about one connector, as plain data (no I/O).

`ReportedState` folds StatusNotification, MeterValues and transaction events into the
latest known status and measurements, and turns them into a `ChargerSample`. The
clock is passed in, so the rules below are tested without a network:
- Status and meter values of the charger's own connector count; connector 0 (the
  main controller) can force ERROR/NOT_READY, and its meter stands in for the
  connector's until the connector reports its own values.
- A status in which no energy can flow (Available, Preparing, Finishing, ...) and
  the end of a transaction set power and current to 0: many charge points stop
  sending MeterValues with the transaction, and the last charging reading would
  otherwise stay on for ever.
- The energy register never goes backwards: transaction messages are queued while
  offline and may arrive late with old values.
"""

from __future__ import annotations

from gateway.adapters.ocpp.meter_values import MeterReading
from gateway.adapters.ocpp.status_map import (
    UNKNOWN_STATE,
    ConnectorState,
    connector_state,
    main_controller_override,
)
from gateway.core.model import (
    CableState,
    ChargerSample,
    ComponentState,
    Phases,
    charger_inclusion_bounds,
    phases_in_use,
)

MAIN_CONTROLLER = 0
"""OCPP connector id of the charge point as a whole (and of its main meter)."""


class ReportedState:
    """The latest status and measurements of one connector of one charge point."""

    def __init__(self, connector_id: int, wired_phases: int) -> None:
        self.connector_id = connector_id
        self.wired_phases = wired_phases
        self.last_seen: float | None = None
        """Wall-clock time of the last frame received from the charge point."""
        self.status: ConnectorState | None = None
        self.controller_override: ComponentState | None = None
        self.meter = MeterReading()
        self._connector_meter_seen = False

    @property
    def has_data(self) -> bool:
        """True once a status or a measurement of this connector has arrived."""
        return self.status is not None or not self.meter.empty

    def frame_received(self, now: float) -> None:
        """Any frame proves the charge point alive (OCPP §4.6)."""
        self.last_seen = now

    def status_received(self, connector_id: int, status: object) -> bool:
        """Apply a StatusNotification; False when the status is not an OCPP one."""
        if connector_id == MAIN_CONTROLLER:
            self.controller_override = main_controller_override(status)
            return True
        if connector_id != self.connector_id:
            return True
        state = connector_state(status)
        self.status = state or UNKNOWN_STATE
        if not self.status.energy_may_flow:
            self._no_energy_flow()
        return state is not None

    def meter_values_received(self, connector_id: int, reading: MeterReading) -> None:
        """Merge a reading of the connector, or of connector 0 until the connector has one."""
        if connector_id == self.connector_id:
            self._connector_meter_seen = True
        elif connector_id != MAIN_CONTROLLER or self._connector_meter_seen:
            return
        current = reading.current
        if all(c is None for c in current):
            # A current without phase means the only phase on a one-phase charger;
            # on others its meaning is vendor-specific (total? mean?), so it is unused.
            if reading.current_unphased is not None and self.wired_phases == 1:
                current = (reading.current_unphased, None, None)
        else:
            # §3.16.3: every measured phase is reported, so an absent one carries nothing.
            current = (current[0] or 0.0, current[1] or 0.0, current[2] or 0.0)
        self.meter = self.meter.updated_by(
            MeterReading(
                power=reading.power,
                current=current,
                voltage=reading.voltage,
                energy=self._monotonic(reading.energy),
            )
        )

    def transaction_started(self, connector_id: int, meter_start: float | None) -> None:
        """The register value at the start of a transaction is an energy reading too."""
        if connector_id == self.connector_id:
            self._update_energy(meter_start)

    def transaction_stopped(self, connector_id: int, meter_stop: float | None) -> None:
        """No energy flows once a transaction has ended."""
        if connector_id == self.connector_id:
            self._no_energy_flow()
            self._update_energy(meter_stop)

    def sample(
        self, max_current: float, nominal_voltage: float, current_limit: float | None
    ) -> ChargerSample:
        """The state as a sample; the caller checks `last_seen` and `has_data` first."""
        if self.last_seen is None:
            raise ValueError("no frame received yet")
        meter = self.meter
        current = Phases(*(value or 0.0 for value in meter.current))
        voltage = Phases(*(value or 0.0 for value in meter.voltage))
        cable = self.status.cable if self.status else CableState.UNSPECIFIED
        component = self.status.component if self.status else ComponentState.UNSPECIFIED
        if self.controller_override is not None:
            component = self.controller_override
        return ChargerSample(
            timestamp=self.last_seen,
            active_power=meter.power or 0.0,
            current=current,
            voltage=voltage,
            energy=meter.energy,
            cable_state=cable,
            component_state=component,
            current_limit=current_limit,
            inclusion_bounds=charger_inclusion_bounds(
                max_current, voltage, nominal_voltage, phases_in_use(current, self.wired_phases)
            ),
        )

    def _no_energy_flow(self) -> None:
        self.meter = MeterReading(
            power=0.0,
            current=(0.0, 0.0, 0.0),
            voltage=self.meter.voltage,
            energy=self.meter.energy,
        )

    def _monotonic(self, energy: float | None) -> float | None:
        """The value for a merge, or None when it would take the register backwards."""
        if energy is None or (self.meter.energy is not None and energy < self.meter.energy):
            return None
        return energy

    def _update_energy(self, energy: float | None) -> None:
        energy = self._monotonic(energy)
        if energy is not None:
            self.meter = self.meter.updated_by(MeterReading(energy=energy))
