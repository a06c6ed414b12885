"""Lenient parsing of OCPP MeterValues (1.6 and 2.0.1) into the quantities the gateway uses.

Pure code: plain data in (the `meter_value` list as the `ocpp` library hands it to a
handler, keys already snake_case, values untouched), a `MeterReading` and a list of
problems out. Nothing here raises on bad input: real charge points send kW where W
is expected, lower-case units, numbers instead of strings, voltage labelled `L1`
instead of `L1-N`, or garbage; a value that cannot be understood is reported as a
problem and skipped, and the rest of the message is still used.

Rules (OCPP 1.6 §3.16, §7.31-7.35; 2.0.1 uses the same measurands and phases):
- A sampled value without `measurand` is `Energy.Active.Import.Register`; one without
  `unit` is in the measurand's base unit (W, A, V, Wh). 2.0.1 sends the value as a
  number and the unit as `unitOfMeasure {unit, multiplier}` (value x 10^multiplier).
- `Current.Offered` (what the charge point offers the EV, per phase or not) is kept as
  the highest value sent, to check the limit against it.
- Power and energy accept W/kW and Wh/kWh; the result is always W and Wh.
- `Power.Active.Import` without phase is the total; if only per-phase powers are sent,
  their sum is the total.
- `Current.Import` and `Voltage` per phase `L1`/`L2`/`L3` (or `L1-N`...). A current
  without phase is vendor-specific (total, average or the only phase) and is kept
  apart as `current_unphased`; line-to-line voltages and the neutral are ignored.
- `format = SignedData` values are not numbers and are skipped silently.
- Several `meter_value` entries (a batch) are applied oldest first, so the newest
  value of each quantity wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

Triple = tuple[float | None, float | None, float | None]

POWER = "power.active.import"
CURRENT = "current.import"
VOLTAGE = "voltage"
ENERGY = "energy.active.import.register"
OFFERED = "current.offered"

_UNIT_SCALE: dict[str, dict[str, float]] = {
    POWER: {"w": 1.0, "kw": 1000.0},
    ENERGY: {"wh": 1.0, "kwh": 1000.0},
    CURRENT: {"a": 1.0},
    OFFERED: {"a": 1.0},
    VOLTAGE: {"v": 1.0},
}
_PHASE_INDEX = {"l1": 0, "l2": 1, "l3": 2, "l1-n": 0, "l2-n": 1, "l3-n": 2}
_IGNORED_PHASES = {"n", "l1-l2", "l2-l3", "l3-l1"}


@dataclass(frozen=True, slots=True)
class MeterReading:
    """The quantities one MeterValues message reported; None means not reported."""

    power: float | None = None
    """Total active power imported, W."""
    current: Triple = (None, None, None)
    """Current per charger phase L1..L3, A."""
    current_unphased: float | None = None
    """A current sent without a phase (meaning depends on the vendor), A."""
    voltage: Triple = (None, None, None)
    """Phase-to-neutral voltage per charger phase, V."""
    energy: float | None = None
    """Active energy import register, Wh (monotonic, not reset per transaction)."""
    current_offered: float | None = None
    """The current the charge point offers the EV (highest phase), A."""

    @property
    def empty(self) -> bool:
        """True when the message carried none of the quantities above."""
        return (
            self.power is None
            and self.current_unphased is None
            and self.energy is None
            and self.current_offered is None
            and all(v is None for v in (*self.current, *self.voltage))
        )

    def updated_by(self, newer: MeterReading) -> MeterReading:
        """This reading with every quantity that `newer` reports replaced."""
        return MeterReading(
            power=_newer(self.power, newer.power),
            current=_newer_triple(self.current, newer.current),
            current_unphased=_newer(self.current_unphased, newer.current_unphased),
            voltage=_newer_triple(self.voltage, newer.voltage),
            energy=_newer(self.energy, newer.energy),
            current_offered=_newer(self.current_offered, newer.current_offered),
        )


@dataclass(frozen=True, slots=True)
class ParseResult:
    """A reading plus what was wrong with the input, for the log."""

    reading: MeterReading
    problems: list[str] = field(default_factory=list)


def parse_meter_values(meter_value: object) -> ParseResult:
    """Parse the `meter_value` list of a MeterValues (or StopTransaction data)."""
    problems: list[str] = []
    if not isinstance(meter_value, list):
        return ParseResult(MeterReading(), [f"meter_value is not a list: {meter_value!r:.80}"])
    entries = [e for e in meter_value if isinstance(e, Mapping)]
    if len(entries) != len(meter_value):
        problems.append("meter_value entries that are not objects were skipped")
    reading = MeterReading()
    for entry in _oldest_first(entries):
        reading = reading.updated_by(_parse_entry(entry, problems))
    return ParseResult(reading, problems)


def _oldest_first(entries: list[Mapping[str, object]]) -> list[Mapping[str, object]]:
    """Sort by timestamp when every entry has a readable one; else keep the order."""
    stamps = [_timestamp(e.get("timestamp")) for e in entries]
    if any(s is None for s in stamps):
        return entries
    order = sorted(range(len(entries)), key=lambda i: stamps[i] or 0.0)
    return [entries[i] for i in order]


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # naive times cannot be compared with aware ones
    return parsed.timestamp()


def _parse_entry(entry: Mapping[str, object], problems: list[str]) -> MeterReading:
    """One meter_value entry: all its sampled values were taken at the same instant."""
    sampled = entry.get("sampled_value")
    if not isinstance(sampled, list):
        problems.append(f"sampled_value is not a list: {sampled!r:.80}")
        return MeterReading()
    power_total: float | None = None
    power_phase: list[float | None] = [None, None, None]
    current: list[float | None] = [None, None, None]
    voltage: list[float | None] = [None, None, None]
    current_unphased: float | None = None
    energy: float | None = None
    offered: float | None = None
    for item in sampled:
        parsed = _parse_sampled_value(item, problems)
        if parsed is None:
            continue
        measurand, phase, value = parsed
        if measurand == POWER:
            if phase is None:
                power_total = value
            else:
                power_phase[phase] = value
        elif measurand == CURRENT:
            if phase is None:
                current_unphased = value
            else:
                current[phase] = value
        elif measurand == VOLTAGE and phase is not None:
            voltage[phase] = value
        elif measurand == ENERGY and phase is None:
            energy = value
        elif measurand == OFFERED:
            offered = value if offered is None else max(offered, value)
    if power_total is None and any(p is not None for p in power_phase):
        power_total = sum(p for p in power_phase if p is not None)
    return MeterReading(
        power=power_total,
        current=(current[0], current[1], current[2]),
        current_unphased=current_unphased,
        voltage=(voltage[0], voltage[1], voltage[2]),
        energy=energy,
        current_offered=offered,
    )


def _parse_sampled_value(item: object, problems: list[str]) -> tuple[str, int | None, float] | None:
    """(measurand, phase index or None, value in base units), or None to skip it."""
    if not isinstance(item, Mapping):
        problems.append(f"sampled value is not an object: {item!r:.80}")
        return None
    measurand = _text(item.get("measurand")) or ENERGY
    scales = _UNIT_SCALE.get(measurand)
    if scales is None:
        return None  # a measurand the gateway does not use (SoC, Frequency, ...)
    if _text(item.get("format")) == "signeddata":
        return None
    value = parse_number(item.get("value"))
    if value is None:
        problems.append(f"{measurand}: value {item.get('value')!r:.40} is not a finite number")
        return None
    unit_text, multiplier = _unit(item)
    unit = unit_text or next(iter(scales))
    scale = scales.get(unit)
    if scale is None or multiplier is None:
        problems.append(f"{measurand}: unit {_raw_unit(item)!r:.40} is not supported")
        return None
    phase_text = _text(item.get("phase"))
    phase: int | None = None
    if phase_text:
        if phase_text in _IGNORED_PHASES:
            return None
        if phase_text not in _PHASE_INDEX:
            problems.append(f"{measurand}: unknown phase {item.get('phase')!r:.20}")
            return None
        phase = _PHASE_INDEX[phase_text]
    return measurand, phase, value * scale * 10.0**multiplier


def _raw_unit(item: Mapping[str, object]) -> object:
    return item.get("unit", item.get("unit_of_measure"))


def _unit(item: Mapping[str, object]) -> tuple[str, int | None]:
    """(unit, power-of-ten multiplier): 1.6 `unit`, or 2.0.1 `unit_of_measure`.

    The multiplier is None when it is not a small integer (the value is then unusable).
    """
    measure = item.get("unit_of_measure")
    if not isinstance(measure, Mapping):
        return _text(item.get("unit")), 0
    multiplier = measure.get("multiplier", 0)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or abs(multiplier) > 9:
        return _text(measure.get("unit")), None
    return _text(measure.get("unit")), multiplier


def _text(value: object) -> str:
    """A case-folded, stripped string; anything else becomes ''."""
    return value.strip().lower() if isinstance(value, str) else ""


def parse_number(value: object) -> float | None:
    """A finite float from a string (as OCPP sends it) or from a bare JSON number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _newer(old: float | None, new: float | None) -> float | None:
    return old if new is None else new


def _newer_triple(old: Triple, new: Triple) -> Triple:
    return (_newer(old[0], new[0]), _newer(old[1], new[1]), _newer(old[2], new[2]))
