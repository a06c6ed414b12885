"""What each supported charger model offers, for `ev-gateway profiles` and the README.

One entry per model: the adapter that drives it, what the gateway reads from it, its
watchdog / fail-safe, phase switching, and the document the facts come from. Modbus
entries are derived from the profile files themselves (so the listing cannot drift from
what the adapter does); the go-e and OCPP entries describe their adapters.

Pure: builds data and text, prints nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.adapters.modbus.profile import Profile, available_profiles


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One supported charger model (or family) as a user chooses it in the config."""

    name: str  # the config's `profile`, or the adapter value for non-Modbus chargers
    charger: str  # vendor and model
    adapter: str  # how it is reached (config `adapter` value and transport)
    reads: tuple[str, ...]  # what each poll gives
    watchdog: str  # what keeps the limit alive / what happens when the gateway stops
    phase_switching: str
    document: str  # the vendor document the facts come from
    covers: tuple[str, ...] = ()  # other brands and models on the same interface


GOE = CatalogEntry(
    name="go-e",
    charger="go-e Charger V3 / V4, HOME+, Gemini, CORE (HTTP API v2)",
    adapter='adapter = "go-e" (HTTP, port 80)',
    reads=("power", "current L1-L3", "voltage L1-L3", "energy", "plug state"),
    watchdog="none on the box (it keeps the last value); the limit is written again when a "
    "read shows another",
    phase_switching="no (psm not used)",
    document="go-e: go-eCharger-API-v2, http-en.md and apikeys-en.md (firmware >= 051.4)",
)

OCPP = CatalogEntry(
    name="ocpp",
    charger="any OCPP 1.6J or 2.0.1 charge point",
    adapter='adapter = "ocpp" (the gateway is the central system)',
    reads=(
        "power",
        "current L1-L3",
        "voltage L1-L3",
        "energy",
        "plug state (as the charge point reports them)",
    ),
    watchdog="limits valid 180 s over a persistent fail-safe profile at safe_current; "
    "re-applied on every (re)connect",
    phase_switching="no (numberPhases is set in the charging profile)",
    document="OCA: OCPP 1.6 edition 2 and OCPP 2.0.1, JSON over WebSocket",
)


def _reads(profile: Profile) -> tuple[str, ...]:
    have = set(profile.registers)
    reads = ["power"]
    for kind, label in (("current", "current"), ("voltage", "voltage")):
        phases = [n for n in ("l1", "l2", "l3") if f"{kind}_{n}" in have]
        if len(phases) == 3:
            reads.append(f"{label} L1-L3")
        elif phases:
            reads.append(f"{label} " + ", ".join(p.upper() for p in phases))
    if "energy" in have:
        reads.append("energy")
    reads.append("plug state")
    if "charging" in have:
        reads.append("charging state")
    return tuple(reads)


def _watchdog(profile: Profile) -> str:
    parts: list[str] = []
    watchdog = profile.watchdog
    if watchdog is not None:
        beat = watchdog.heartbeat
        if beat is not None:
            value = f"0x{beat.value:04X}" if beat.value > 9999 else str(beat.value)
            parts.append(f"writes {value} to {beat.address} every {beat.interval:g} s")
        rewrite = []
        if watchdog.keepalive_interval is not None:
            rewrite.append(f"every {watchdog.keepalive_interval:g} s")
        if watchdog.timeout_register is not None:
            rewrite.append(f"every quarter of the timeout in {watchdog.timeout_register}")
        if rewrite:
            parts.append("limit rewritten " + " or ".join(rewrite))
        if watchdog.validity_time is not None:
            parts.append(f"the charger drops it after {watchdog.validity_time:g} s")
    if profile.safe_current is not None:
        access = "written" if profile.safe_current_write is not None else "read"
        parts.append(f"fail-safe current in {profile.safe_current.address} ({access})")
    return "; ".join(parts) if parts else "none documented"


def _phase_switching(profile: Profile) -> str:
    switch = profile.phase_switch
    if switch is None:
        return "no"
    return (
        f"register {switch.address} (1p = {switch.one_phase}, 3p = {switch.three_phase}), "
        "declared, not switched yet"
    )


def profile_entry(profile: Profile) -> CatalogEntry:
    """The entry of one Modbus profile."""
    transport = "RTU" if profile.protocol == "modbus-rtu" else "TCP"
    source = profile.source
    return CatalogEntry(
        name=profile.name,
        charger=f"{profile.vendor} {profile.model}",
        adapter=f'adapter = "modbus" (Modbus {transport}, unit {profile.unit_id})',
        reads=_reads(profile),
        watchdog=_watchdog(profile),
        phase_switching=_phase_switching(profile),
        document=f"{source.title}, {source.version}" if source.version else source.title,
        covers=profile.covers,
    )


def catalog(profiles: Iterable[Profile] | None = None) -> list[CatalogEntry]:
    """Every supported model: the shipped profiles (the generic reference map last),
    then go-e and OCPP."""
    shipped = list(available_profiles() if profiles is None else profiles)
    ordered = sorted(shipped, key=lambda p: (p.name == "generic", p.name))
    return [*(profile_entry(p) for p in ordered), GOE, OCPP]


def text_listing(entries: Sequence[CatalogEntry]) -> str:
    """The listing `ev-gateway profiles` prints: one block per model."""
    blocks = []
    for entry in entries:
        lines = [
            f"{entry.name}: {entry.charger}",
            f"  adapter   {entry.adapter}",
            f"  reads     {', '.join(entry.reads)}",
            f"  watchdog  {entry.watchdog}",
            f"  phases    {entry.phase_switching}",
            f"  document  {entry.document}",
        ]
        if entry.covers:
            lines.append(f"  also      {'; '.join(entry.covers)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def markdown_table(entries: Sequence[CatalogEntry]) -> str:
    """The README's "Supported chargers" table (one row per model)."""
    head = ("profile", "charger", "adapter", "reads", "watchdog / fail-safe", "phase switching")
    rows = ["| " + " | ".join((*head, "document")) + " |", "|---" * (len(head) + 1) + "|"]
    for e in entries:
        charger = e.charger + (f" (also: {'; '.join(e.covers)})" if e.covers else "")
        cells = (
            f"`{e.name}`", charger, e.adapter, ", ".join(e.reads),
            e.watchdog, e.phase_switching, e.document,
        )  # fmt: skip
        rows.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(rows) + "\n"
