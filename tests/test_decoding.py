"""Pure register decoding/encoding: known vectors, errors, and hypothesis round trips."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.modbus.decoding import (
    DataType,
    DecodeError,
    EncodeError,
    FieldCodec,
    WordOrder,
    decode,
    encode,
    register_count,
    registers_to_bytes,
)

BIG, LITTLE = WordOrder.BIG, WordOrder.LITTLE
INT_RANGES = {
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT64: (0, 2**64 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
}

# (value, type, word order, registers) from the IEEE 754 / two's complement definitions
KNOWN = [
    (230.0, DataType.FLOAT32, BIG, [0x4366, 0x0000]),
    (230.0, DataType.FLOAT32, LITTLE, [0x0000, 0x4366]),
    (16.0, DataType.FLOAT32, BIG, [0x4180, 0x0000]),
    (-1.5, DataType.FLOAT32, BIG, [0xBFC0, 0x0000]),
    (1.0, DataType.FLOAT64, BIG, [0x3FF0, 0x0000, 0x0000, 0x0000]),
    (1.0, DataType.FLOAT64, LITTLE, [0x0000, 0x0000, 0x0000, 0x3FF0]),
    (299_734.0, DataType.FLOAT64, BIG, [0x4112, 0x4B58, 0x0000, 0x0000]),
    (0x12345678, DataType.UINT32, BIG, [0x1234, 0x5678]),
    (0x12345678, DataType.UINT32, LITTLE, [0x5678, 0x1234]),
    (-2, DataType.INT32, BIG, [0xFFFF, 0xFFFE]),
    (-2, DataType.INT32, LITTLE, [0xFFFE, 0xFFFF]),
    (-1, DataType.INT16, BIG, [0xFFFF]),
    (513, DataType.UINT16, LITTLE, [0x0201]),  # one register: word order does not apply
    (0x0102030405060708, DataType.UINT64, BIG, [0x0102, 0x0304, 0x0506, 0x0708]),
    (0x0102030405060708, DataType.UINT64, LITTLE, [0x0708, 0x0506, 0x0304, 0x0102]),
    (-(2**63), DataType.INT64, BIG, [0x8000, 0, 0, 0]),
]


@pytest.mark.parametrize(("value", "data_type", "order", "registers"), KNOWN)
def test_known_vectors(
    value: float, data_type: DataType, order: WordOrder, registers: list[int]
) -> None:
    assert encode(value, data_type, order) == registers
    assert decode(registers, data_type, order) == value


def test_ascii_mode3_state_as_alfen_sends_it() -> None:
    # "C2" in 5 registers, high byte first, NUL-terminated (Alfen section 1.2)
    registers = [0x4332, 0, 0, 0, 0]
    assert decode(registers, DataType.ASCII) == "C2"
    assert encode("C2", DataType.ASCII, length=5) == registers
    assert decode([0x4131, 0x2000, 0x5858, 0, 0], DataType.ASCII) == "A1"  # stops at NUL


def test_scale_multiplies_on_decode_and_divides_on_encode() -> None:
    assert decode([159], DataType.UINT16, scale=0.1) == pytest.approx(15.9)
    assert encode(15.9, DataType.UINT16, scale=0.1) == [159]
    assert encode(16.0, DataType.UINT32, scale=0.001) == [0, 16000]  # mA (ABB 0x4100)
    assert decode([0, 16000], DataType.UINT32, scale=0.001) == pytest.approx(16.0)
    assert decode([0x0001, 0x86A0], DataType.INT32, scale=0.001) == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("registers", "data_type"),
    [
        ([0x7FC0, 0x0000], DataType.FLOAT32),  # quiet NaN
        ([0xFFFF, 0xFFFF], DataType.FLOAT32),  # Alfen's "not available"
        ([0x7F80, 0x0000], DataType.FLOAT32),  # +inf
        ([0xFF80, 0x0000], DataType.FLOAT32),  # -inf
        ([0xFFFF] * 4, DataType.FLOAT64),
        ([0x7FF0, 0, 0, 0], DataType.FLOAT64),
    ],
)
def test_nan_and_infinities_are_reported(registers: list[int], data_type: DataType) -> None:
    with pytest.raises(DecodeError, match=r"register 306.*(nan|inf)"):
        decode(registers, data_type, where="register 306: ")


def test_out_of_range_is_reported_with_where() -> None:
    with pytest.raises(DecodeError, match=r"voltage_l1: 1e\+09 is outside the plausible range"):
        decode(
            encode(1e9, DataType.FLOAT32), DataType.FLOAT32, valid=(0, 1000), where="voltage_l1: "
        )
    assert decode(encode(230.0, DataType.FLOAT32), DataType.FLOAT32, valid=(0, 1000)) == 230.0


def test_wrong_register_count_and_bad_registers() -> None:
    with pytest.raises(DecodeError, match="float32 spans 2 registers, got 1"):
        decode([0x4366], DataType.FLOAT32)
    with pytest.raises(DecodeError, match="not 16-bit"):
        decode([0x10000], DataType.UINT16)
    with pytest.raises(DecodeError, match="not ASCII"):
        decode([0xC3A9, 0], DataType.ASCII)


@pytest.mark.parametrize(
    ("value", "data_type", "message"),
    [
        (-1, DataType.UINT16, "out of range"),
        (70_000, DataType.UINT16, "out of range"),
        (2**32, DataType.UINT32, "out of range"),
        (math.nan, DataType.FLOAT32, "cannot write nan"),
        (math.inf, DataType.INT32, "cannot write inf"),
        (1e39, DataType.FLOAT32, "out of range"),
        ("6", DataType.UINT16, "needs a number"),
    ],
)
def test_encode_errors(value: float | str, data_type: DataType, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encode(value, data_type)


def test_ascii_encode_errors() -> None:
    with pytest.raises(EncodeError, match="does not fit"):
        encode("ABCDE", DataType.ASCII, length=2)
    with pytest.raises(EncodeError, match="not ASCII"):
        encode("é", DataType.ASCII, length=2)
    with pytest.raises(ValueError, match="length"):
        register_count(DataType.ASCII)


# -- hypothesis: round trips for every type and both word orders --------------------

orders = st.sampled_from([BIG, LITTLE])


@given(st.data(), st.sampled_from(sorted(INT_RANGES)), orders)
def test_integer_round_trip(data: st.DataObject, data_type: DataType, order: WordOrder) -> None:
    low, high = INT_RANGES[data_type]
    value = data.draw(st.integers(low, high))
    registers = encode(value, data_type, order)
    assert len(registers) == register_count(data_type)
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode(registers, data_type, order) == value


@given(st.floats(width=32, allow_nan=False, allow_infinity=False), orders)
def test_float32_round_trip(value: float, order: WordOrder) -> None:
    assert decode(encode(value, DataType.FLOAT32, order), DataType.FLOAT32, order) == value


@given(st.floats(allow_nan=False, allow_infinity=False), orders)
def test_float64_round_trip(value: float, order: WordOrder) -> None:
    assert decode(encode(value, DataType.FLOAT64, order), DataType.FLOAT64, order) == value


@given(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=10),
    st.integers(5, 8),
)
def test_ascii_round_trip(text: str, length: int) -> None:
    assert decode(encode(text, DataType.ASCII, length=length), DataType.ASCII) == text


@given(st.integers(0, 60_000), st.sampled_from([0.1, 0.01, 0.001, 1.0]))
def test_scaled_integer_round_trip(raw: int, scale: float) -> None:
    amps = raw * scale
    assert encode(amps, DataType.UINT32, BIG, scale) == encode(raw, DataType.UINT32)
    assert decode(encode(amps, DataType.UINT32, scale=scale), DataType.UINT32, scale=scale) == (
        pytest.approx(amps)
    )


@given(st.sampled_from([t for t in DataType if t is not DataType.ASCII]), st.data())
def test_little_word_order_is_the_big_registers_reversed(
    data_type: DataType, data: st.DataObject
) -> None:
    if data_type in INT_RANGES:
        value: float = data.draw(st.integers(*INT_RANGES[data_type]))
    else:
        value = data.draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
    assert encode(value, data_type, LITTLE) == encode(value, data_type, BIG)[::-1]


# -- FieldCodec: the compiled fast path agrees with `decode` ------------------------


@given(
    st.sampled_from([t for t in DataType if t is not DataType.ASCII]),
    orders,
    st.lists(st.integers(0, 0xFFFF), min_size=12, max_size=12),
    st.integers(0, 8),
)
def test_field_codec_agrees_with_decode(
    data_type: DataType, order: WordOrder, block: list[int], offset: int
) -> None:
    count = register_count(data_type)
    codec = FieldCodec("x", 100 + offset, offset, data_type, order, 1.0, count)
    window = block[offset : offset + count]
    try:
        expected = float(decode(window, data_type, order))
    except DecodeError:
        with pytest.raises(DecodeError, match=rf"register {100 + offset} \(x, "):
            codec.decode_number(registers_to_bytes(block))
        return
    assert codec.decode_number(registers_to_bytes(block)) == expected


def test_field_codec_range_nan_as_zero_and_codes() -> None:
    block = registers_to_bytes([0x4366, 0, 0xFFFF, 0xFFFF, 0x4E6E, 0x6B28, 3, 0x4232, 0, 0])
    volts = FieldCodec("voltage_l1", 306, 0, DataType.FLOAT32, minimum=0, maximum=1000, count=2)
    assert volts.decode_number(block) == 230.0
    missing = FieldCodec("voltage_l2", 308, 2, DataType.FLOAT32, count=2, nan_as_zero=True)
    assert missing.decode_number(block) == 0.0
    strict = FieldCodec("active_power", 344, 2, DataType.FLOAT32, count=2)
    with pytest.raises(DecodeError, match=r"register 344 \(active_power, float32 big\): NaN"):
        strict.decode_number(block)
    absurd = FieldCodec("voltage_l3", 310, 4, DataType.FLOAT32, minimum=0, maximum=1000, count=2)
    with pytest.raises(DecodeError, match="1e\\+09 is outside the plausible range \\[0, 1000\\]"):
        absurd.decode_number(block)
    assert FieldCodec("state", 20, 6, DataType.UINT16).decode_code(block) == 3
    assert FieldCodec("state", 1201, 7, DataType.ASCII, count=3).decode_code(block) == "B2"
    scaled = FieldCodec("current_l1", 6, 6, DataType.UINT16, scale=0.1)
    assert scaled.decode_number(block) == pytest.approx(0.3)


def test_field_codec_float_state_must_be_whole() -> None:
    block = struct.pack(">f", 2.5)
    with pytest.raises(DecodeError, match="not a state code"):
        FieldCodec("state", 0, 0, DataType.FLOAT32, count=2).decode_code(block)
