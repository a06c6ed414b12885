"""Read planning: the fewest Modbus requests that cover a profile's measurement registers.

A round trip to a charger costs far more than reading a few extra registers, so
registers of the same function code are merged into one request when the gap between
them is small. Two limits keep that safe: a request never exceeds 125 registers (the
Modbus maximum for FC3/FC4), and a gap is only bridged up to `max_gap` registers, a
per-profile fact because some chargers answer an exception for a read that spans
registers they do not define (KEBA cannot read across value boundaries at all:
`max_gap = 0` there still merges only touching ranges).

`plan_reads` is pure and greedy: ranges sorted by (function code, address) are added to
the current request while they fit. For intervals on a line with a maximum span this
greedy choice gives the minimum number of requests.

`PlannedRead` is a request plus the compiled codecs of the values inside it, built once
when a profile loads.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.adapters.modbus.decoding import DecodeError, FieldCodec

MAX_READ_COUNT = 125
"""The most registers one FC3/FC4 request may ask for (Modbus application protocol)."""


@dataclass(frozen=True, slots=True)
class RegisterRange:
    """Registers one value spans: `count` registers from `address`, read with `function_code`."""

    function_code: int
    address: int
    count: int
    name: str = ""

    @property
    def end(self) -> int:
        """One past the last register."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` registers from `address` with `function_code`."""

    function_code: int
    address: int
    count: int
    names: tuple[str, ...] = ()

    @property
    def end(self) -> int:
        """One past the last register."""
        return self.address + self.count

    def describe(self) -> str:
        """For error messages: which registers and what they hold."""
        kind = "holding" if self.function_code == 3 else "input"
        span = f"{self.address}" if self.count == 1 else f"{self.address}-{self.end - 1}"
        return f"{kind} registers {span} ({', '.join(self.names)})"


def plan_reads(
    ranges: Iterable[RegisterRange], max_gap: int = 16, max_count: int = MAX_READ_COUNT
) -> list[ReadBlock]:
    """Merge register ranges into as few read requests as the limits allow.

    Ranges of the same function code merge when at most `max_gap` unread registers lie
    between them and the merged request stays within `max_count` registers. Overlapping
    and duplicate ranges are fine. Raises ValueError for a range that alone exceeds
    `max_count` or has a count below 1.
    """
    if max_gap < 0 or not 1 <= max_count <= MAX_READ_COUNT:
        raise ValueError(f"need max_gap >= 0 and 1 <= max_count <= {MAX_READ_COUNT}")
    ordered = sorted(ranges, key=lambda r: (r.function_code, r.address, r.count))
    blocks: list[ReadBlock] = []
    fc = start = end = -1
    names: list[str] = []
    for item in ordered:
        if not 1 <= item.count <= max_count:
            raise ValueError(f"{item.name or item.address}: {item.count} registers in one value")
        fits = (
            item.function_code == fc
            and item.address - end <= max_gap
            and max(end, item.end) - start <= max_count
        )
        if fits:
            end = max(end, item.end)
        else:
            if fc >= 0:
                blocks.append(ReadBlock(fc, start, end - start, tuple(names)))
            fc, start, end, names = item.function_code, item.address, item.end, []
        if item.name:
            names.append(item.name)
    if fc >= 0:
        blocks.append(ReadBlock(fc, start, end - start, tuple(names)))
    return blocks


@dataclass(frozen=True, slots=True)
class PlannedRead:
    """A read request and the values it carries, ready to decode in one pass."""

    block: ReadBlock
    numbers: tuple[FieldCodec, ...]
    codes: tuple[FieldCodec, ...] = ()
    _pack: struct.Struct = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pack", struct.Struct(f">{self.block.count}H"))

    def decode_into(self, registers: object, values: dict[str, float | int | str]) -> None:
        """Decode the block's registers into `values` (name -> value).

        Raises `DecodeError` for a response of the wrong length and for any value that
        does not decode (see `FieldCodec`).
        """
        try:
            data = self._pack.pack(*registers)  # type: ignore[misc]
        except (struct.error, TypeError) as exc:
            raise DecodeError(
                f"{self.block.describe()}: expected {self.block.count} registers, "
                f"got {registers!r:.80}"
            ) from exc
        for codec in self.numbers:
            values[codec.name] = codec.decode_number(data)
        for codec in self.codes:
            values[codec.name] = codec.decode_code(data)


def compile_reads(
    codecs: Iterable[tuple[RegisterRange, FieldCodec]],
    max_gap: int,
    max_count: int = MAX_READ_COUNT,
) -> tuple[PlannedRead, ...]:
    """Plan the requests for these values and place each codec inside its request.

    `max_count` caps the registers per request, for devices that answer fewer than the
    Modbus maximum at once (see `plan_reads`).

    `codecs` pairs each value's register range with a codec whose `offset` is ignored
    (it is recomputed relative to the request that carries the value). Codecs whose
    name is "state" decode as codes (int or str), all others as numbers.
    """
    pairs = list(codecs)
    blocks = plan_reads((r for r, _ in pairs), max_gap=max_gap, max_count=max_count)
    planned: list[PlannedRead] = []
    for block in blocks:
        numbers: list[FieldCodec] = []
        codes: list[FieldCodec] = []
        for rng, codec in pairs:
            inside = rng.function_code == block.function_code and (
                block.address <= rng.address and rng.end <= block.end
            )
            if not inside:
                continue
            placed = FieldCodec(
                name=codec.name,
                address=codec.address,
                offset=rng.address - block.address,
                data_type=codec.data_type,
                word_order=codec.word_order,
                scale=codec.scale,
                count=codec.count,
                minimum=codec.minimum,
                maximum=codec.maximum,
                nan_as_zero=codec.nan_as_zero,
                mask=codec.mask,
                shift=codec.shift,
            )
            (codes if codec.name == "state" else numbers).append(placed)
        planned.append(PlannedRead(block, tuple(numbers), tuple(codes)))
    return tuple(planned)
