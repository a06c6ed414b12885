"""Pure register decoding and encoding: Modbus registers <-> values.

A Modbus register is 16 bits, sent high byte first. Wider values span 2 or 4 registers
and vendors disagree on which register comes first: "big" word order puts the most
significant register first (ABCD, Alfen), "little" the least significant (CDAB,
Schneider). ASCII strings hold two characters per register, high byte first, padded with
NULs. `scale` multiplies a raw value into engineering units (0.1 for a register in deci-
amps); encoding divides by it.

Two layers:
- `decode` / `encode`: one value from / to a list of registers. Clear, checked, used at
  profile load, in tests and for the setpoint write.
- `FieldCodec`: one value at a fixed place inside a block read, compiled once when a
  profile loads, so the poll path is a struct unpack, a multiply and one comparison.

NaN, infinities and values outside a plausible range raise `DecodeError` naming the
register: a charger that answers nonsense must not feed nonsense into the distributor.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

MAX_FLOAT = 1.7976931348623157e308
"""The largest finite float: the default plausible range rejects only NaN and infinities."""


class DataType(StrEnum):
    """How the bits of one value are laid out in its registers."""

    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    UINT64 = "uint64"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    ASCII = "ascii"


class WordOrder(StrEnum):
    """Which register of a multi-register value comes first on the wire."""

    BIG = "big"  # most significant register first (ABCD)
    LITTLE = "little"  # least significant register first (CDAB)


class DecodeError(ValueError):
    """Registers that do not hold a usable value; the message says which and why."""


class EncodeError(ValueError):
    """A value that cannot be written in the requested register type."""


# struct format character and register count of each numeric type
_NUMERIC: dict[DataType, tuple[str, int]] = {
    DataType.UINT16: ("H", 1),
    DataType.INT16: ("h", 1),
    DataType.UINT32: ("I", 2),
    DataType.INT32: ("i", 2),
    DataType.UINT64: ("Q", 4),
    DataType.INT64: ("q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}
_FLOATS = frozenset({DataType.FLOAT32, DataType.FLOAT64})


def register_count(data_type: DataType, length: int | None = None) -> int:
    """How many registers a value of `data_type` spans (`length` for ASCII strings)."""
    if data_type is DataType.ASCII:
        if length is None or length < 1:
            raise ValueError("an ascii value needs its length in registers (>= 1)")
        return length
    return _NUMERIC[data_type][1]


def is_integer_type(data_type: DataType) -> bool:
    """True for the integer types (their raw value is exact before scaling)."""
    return data_type not in _FLOATS and data_type is not DataType.ASCII


def _swap_words(data: bytes) -> bytes:
    """Reverse the order of the 2-byte words (CDAB <-> ABCD); bytes within a word stay."""
    return b"".join(data[i : i + 2] for i in range(len(data) - 2, -1, -2))


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    """The registers as the bytes on the wire (each high byte first)."""
    try:
        return struct.pack(f">{len(registers)}H", *registers)
    except struct.error as exc:
        raise DecodeError(f"registers {list(registers)} are not 16-bit values") from exc


def bytes_to_registers(data: bytes) -> list[int]:
    """The inverse of `registers_to_bytes`; `data` has an even length."""
    return list(struct.unpack(f">{len(data) // 2}H", data))


def decode_ascii(data: bytes, where: str = "") -> str:
    """A NUL-terminated ASCII string, surrounding spaces removed."""
    text = data.split(b"\0", 1)[0]
    try:
        return text.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{where}not ASCII text: {text!r}") from exc


def decode(
    registers: Sequence[int],
    data_type: DataType,
    word_order: WordOrder = WordOrder.BIG,
    scale: float = 1.0,
    *,
    valid: tuple[float, float] | None = None,
    where: str = "",
) -> float | int | str:
    """One value from exactly the registers it spans.

    Integers come back as int when `scale` is 1, otherwise as float; floats as float,
    ASCII as str. NaN, infinities and scaled values outside `valid` (inclusive) raise
    `DecodeError`, prefixed with `where`.
    """
    if data_type is DataType.ASCII:
        return decode_ascii(registers_to_bytes(registers), where)
    fmt, count = _NUMERIC[data_type]
    if len(registers) != count:
        raise DecodeError(f"{where}{data_type} spans {count} registers, got {len(registers)}")
    data = registers_to_bytes(registers)
    if word_order is WordOrder.LITTLE:
        data = _swap_words(data)
    raw: float | int = struct.unpack(">" + fmt, data)[0]
    if data_type in _FLOATS and not math.isfinite(raw):
        raise DecodeError(f"{where}{data_type} is {raw} (registers {_hex(registers)})")
    value = raw if scale == 1.0 else raw * scale
    if valid is not None and not valid[0] <= value <= valid[1]:
        raise DecodeError(f"{where}{value:g} is outside the plausible range {list(valid)}")
    return value


def encode(
    value: float | int | str,
    data_type: DataType,
    word_order: WordOrder = WordOrder.BIG,
    scale: float = 1.0,
    *,
    length: int | None = None,
) -> list[int]:
    """The registers that hold `value` (in engineering units; divided by `scale`).

    Integer types round to the nearest raw step. Raises `EncodeError` for non-finite
    values, values outside the type's range, and strings that do not fit.
    """
    if data_type is DataType.ASCII:
        if not isinstance(value, str):
            raise EncodeError(f"ascii needs a str, got {value!r}")
        count = register_count(data_type, length)
        try:
            data = value.encode("ascii")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"{value!r} is not ASCII") from exc
        if len(data) > 2 * count:
            raise EncodeError(f"{value!r} does not fit in {count} registers")
        return bytes_to_registers(data.ljust(2 * count, b"\0"))
    if isinstance(value, str):
        raise EncodeError(f"{data_type} needs a number, got {value!r}")
    if not math.isfinite(value):
        raise EncodeError(f"cannot write {value} as {data_type}")
    fmt, _ = _NUMERIC[data_type]
    raw: float | int = value / scale if scale != 1.0 else value
    if data_type not in _FLOATS:
        raw = round(raw)
    try:
        data = struct.pack(">" + fmt, raw)
    except (struct.error, OverflowError) as exc:
        raise EncodeError(f"{value} (raw {raw}) is out of range for {data_type}") from exc
    if word_order is WordOrder.LITTLE:
        data = _swap_words(data)
    return bytes_to_registers(data)


def _hex(registers: Sequence[int]) -> str:
    return "[" + ", ".join(f"0x{r:04X}" for r in registers) + "]"


@dataclass(frozen=True, slots=True)
class FieldCodec:
    """One value at a fixed offset inside a block of registers, compiled for speed.

    `decode_number` returns a float in engineering units, range-checked: one struct
    unpack, one multiply and one chained comparison on the good path (NaN fails the
    comparison by itself, so there is no separate NaN test). `nan_as_zero` turns a NaN
    into 0.0 for registers whose vendor document says "NaN when not available".

    `shift` / `mask` (integer types only) select a bit field of the raw value before
    scaling: `(raw >> shift) & mask`, for a vendor that packs a code into some bits of
    a wider register (ABB Terra AC: the state is bits 8-14 of a uint32).
    """

    name: str
    address: int
    offset: int  # registers from the start of the block
    data_type: DataType
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0
    count: int = 1
    minimum: float = -MAX_FLOAT
    maximum: float = MAX_FLOAT
    nan_as_zero: bool = False
    mask: int | None = None
    shift: int = 0
    _unpack_from: Callable[[bytes, int], tuple[float | int, ...]] = field(init=False, repr=False)
    _unpack: Callable[[bytes], tuple[float | int, ...]] = field(init=False, repr=False)
    _byte_offset: int = field(init=False, repr=False)
    _swap: bool = field(init=False, repr=False)
    _bits: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fmt = _NUMERIC[self.data_type][0] if self.data_type is not DataType.ASCII else "H"
        packer = struct.Struct(">" + fmt)
        # frozen dataclass: the compiled helpers are set once here
        object.__setattr__(self, "_unpack_from", packer.unpack_from)
        object.__setattr__(self, "_unpack", packer.unpack)
        object.__setattr__(self, "_byte_offset", 2 * self.offset)
        object.__setattr__(self, "_swap", self.word_order is WordOrder.LITTLE and self.count > 1)
        bits = self.mask is not None or self.shift != 0
        if bits and not is_integer_type(self.data_type):
            raise ValueError(f"{self.name}: mask and shift need an integer type")
        object.__setattr__(self, "_bits", bits)

    def _field(self, raw: int) -> int:
        value = raw >> self.shift
        return value if self.mask is None else value & self.mask

    @property
    def where(self) -> str:
        """How an error names this value: register address, quantity and type."""
        return f"register {self.address} ({self.name}, {self.data_type} {self.word_order}): "

    def decode_number(self, block: bytes) -> float:
        """The value in engineering units from the block's bytes; raises `DecodeError`."""
        if self._swap:
            start = self._byte_offset
            raw = self._unpack(_swap_words(block[start : start + 2 * self.count]))[0]
        else:
            raw = self._unpack_from(block, self._byte_offset)[0]
        if self._bits:
            raw = self._field(int(raw))
        value = raw * self.scale
        if self.minimum <= value <= self.maximum:
            return value
        return self._reject(value)

    def _reject(self, value: float) -> float:
        if math.isnan(value):
            if self.nan_as_zero:
                return 0.0
            raise DecodeError(f"{self.where}NaN")
        raise DecodeError(
            f"{self.where}{value:g} is outside the plausible range "
            f"[{self.minimum:g}, {self.maximum:g}]"
        )

    def decode_code(self, block: bytes) -> int | str:
        """A state code: the raw integer, or the stripped ASCII text."""
        start = self._byte_offset
        if self.data_type is DataType.ASCII:
            return decode_ascii(block[start : start + 2 * self.count], self.where)
        if self._swap:
            raw = self._unpack(_swap_words(block[start : start + 2 * self.count]))[0]
        else:
            raw = self._unpack_from(block, start)[0]
        if self._bits:
            return self._field(int(raw))
        if isinstance(raw, float):
            if not math.isfinite(raw) or raw != int(raw):
                raise DecodeError(f"{self.where}{raw} is not a state code")
            return int(raw)
        return raw
