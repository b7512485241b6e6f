"""The tensor wire codec: exact round trips, torch's dtype inference, and every refusal."""

import base64
import time

import numpy as np
import pytest

from service.problems import ProblemError
from service.wire import decode_tensor, decode_tensors, encode_tensor, jsonio

F32, F64 = np.finfo(np.float32), np.finfo(np.float64)
I64 = np.iinfo(np.int64)

SAMPLES = {
    "float32": np.array(
        [0.1, -0.0, F32.max, -F32.max, F32.tiny, F32.smallest_subnormal, np.nan, np.inf, -np.inf],
        dtype=np.float32,
    ),
    "float64": np.array(
        [0.1, -0.0, 1 / 3, F64.max, F64.tiny, F64.smallest_subnormal, np.nan, np.inf, -np.inf]
    ),
    "int64": np.array([I64.min, -1, 0, 1, I64.max, 2**53 + 1], dtype=np.int64),
    "bool": np.array([True, False, True]),
}  # fmt: skip


def over_the_wire(message: dict) -> dict:
    return jsonio.loads(jsonio.dumps(message))


def assert_identical(got: np.ndarray, want: np.ndarray) -> None:
    """Same dtype, shape and every bit, except that a JSON NaN is the canonical NaN."""
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=want.dtype.kind == "f")
    if want.dtype.kind == "f":
        assert np.array_equal(np.signbit(got), np.signbit(want))


def refusal(obj, **limits) -> dict:
    with pytest.raises(ProblemError) as info:
        decode_tensor(obj, pointer="/inputs/t", **limits)
    return info.value.document()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "b64"])
@pytest.mark.parametrize("dtype", list(SAMPLES))
@pytest.mark.parametrize("shape", [None, (), (0,), (2, 0)], ids=["1d", "0d", "empty", "2x0"])
def test_round_trip_is_exact_for_every_dtype_and_shape(dtype, binary, shape):
    sample = SAMPLES[dtype]
    if shape is not None:
        sample = np.resize(sample, shape)
    message = over_the_wire(encode_tensor(sample, binary=binary))
    assert message["dtype"] == dtype and message["shape"] == list(sample.shape)
    array, requires_grad = decode_tensor(message)
    assert_identical(array, sample)
    assert requires_grad is False
    if binary:
        assert array.tobytes() == sample.astype(sample.dtype.newbyteorder("<")).tobytes()


def test_non_finite_values_are_strings_in_json_and_bits_in_b64():
    sample = np.array([[1.5, np.nan], [np.inf, -np.inf]], dtype=np.float32)
    text = jsonio.dumps(encode_tensor(sample))
    assert text == (
        b'{"data":[[1.5,"NaN"],["Infinity","-Infinity"]],"shape":[2,2],"dtype":"float32"}'
    )
    b64 = jsonio.loads(jsonio.dumps(encode_tensor(sample, binary=True)))["b64"]
    assert base64.b64decode(b64) == sample.astype("<f4").tobytes()


def test_float32_values_print_short_and_parse_back_exactly():
    bits = np.random.default_rng(1).integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    sample = bits.view(np.float32)
    sample = sample[np.isfinite(sample)]
    message = over_the_wire(encode_tensor(sample))
    array, _ = decode_tensor(message)
    assert np.array_equal(array.view(np.uint32), sample.view(np.uint32))
    assert (
        jsonio.dumps(encode_tensor(np.float32(0.1))) == b'{"data":0.1,"shape":[],"dtype":"float32"}'
    )


def test_float64_random_bits_round_trip_exactly():
    bits = np.random.default_rng(2).integers(0, 2**63, 200_000, dtype=np.uint64)
    sample = bits.view(np.float64)
    sample = sample[np.isfinite(sample)]
    array, _ = decode_tensor(over_the_wire(encode_tensor(sample)))
    assert np.array_equal(array.view(np.uint64), sample.view(np.uint64))


def test_a_million_elements_in_b64_are_exact_and_fast():
    sample = np.random.default_rng(3).standard_normal(1_000_000).astype(np.float32)
    message = over_the_wire(encode_tensor(sample, binary=True))
    assert len(message["b64"]) == 4 * -(-4_000_000 // 3)
    start = time.perf_counter()
    array, _ = decode_tensor(message, max_elements=1_000_000)
    elapsed = time.perf_counter() - start
    assert np.array_equal(array.view(np.uint32), sample.view(np.uint32))
    assert elapsed < 0.25, f"b64 decode took {elapsed:.3f}s: a per-element path crept in?"


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        ([2, 3], "int64", [2, 3]),
        ([2.0, 3], "float32", [2, 3]),
        ([True, False], "bool", [True, False]),
        (3, "int64", 3),
        (2.5, "float32", 2.5),
        ([True, 2], "int64", [1, 2]),
        ([True, 2.5], "float32", [1, 2.5]),
        ([], "float32", []),
        ([[], []], "float32", [[], []]),
        ([1e300], "float32", [np.inf]),
        ([[1, 2], [3, 4]], "int64", [[1, 2], [3, 4]]),
    ],
)
def test_shorthand_infers_dtypes_as_torch_tensor_does(value, dtype, expected):
    array, requires_grad = decode_tensor(value)
    assert array.dtype == np.dtype(dtype)
    assert np.array_equal(array, np.array(expected, dtype=dtype))
    assert requires_grad is False
    torch = pytest.importorskip("torch")
    assert str(torch.tensor(value).dtype) == f"torch.{dtype}"


@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        ([1.7, -2.9, 0.5], "int64"),
        ([0, 2, -1], "bool"),
        ([1, 2**40], "float32"),
        ([0.1], "float64"),
    ],
)
def test_explicit_dtype_converts_as_torch_tensor_does(data, dtype):
    array, _ = decode_tensor({"data": data, "dtype": dtype})
    torch = pytest.importorskip("torch")
    want = torch.tensor(data, dtype=getattr(torch, dtype)).numpy()
    assert array.dtype == want.dtype
    assert np.array_equal(array, want)


def test_non_finite_strings_decode_to_float32_by_default():
    array, _ = decode_tensor([1, "NaN", "Infinity", "-Infinity", True])
    assert array.dtype == np.float32
    assert np.array_equal(array, [1, np.nan, np.inf, -np.inf, 1], equal_nan=True)
    scalar, _ = decode_tensor({"data": "-Infinity", "dtype": "float64"})
    assert scalar.dtype == np.float64 and scalar.shape == () and scalar == -np.inf


def test_flat_data_with_shape_is_read_row_major():
    array, requires_grad = decode_tensor(
        {"data": [1, 2, 3, 4, 5, 6], "shape": [2, 3], "dtype": "float64", "requires_grad": True}
    )
    assert array.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert (array.dtype, requires_grad) == (np.float64, True)
    nested, _ = decode_tensor({"data": [[1, 2, 3], [4, 5, 6]], "shape": [2, 3]})
    assert np.array_equal(nested, array)


def test_integer_data_requiring_grad_is_float32_as_the_seed_means_it():
    # The seed writes a = torch.tensor([2., 3.], requires_grad=True); on the wire [2, 3].
    array, requires_grad = decode_tensor({"data": [2, 3], "requires_grad": True})
    assert (array.dtype, array.tolist(), requires_grad) == (np.float32, [2.0, 3.0], True)
    plain, _ = decode_tensor({"data": [2, 3]})
    assert plain.dtype == np.int64


def test_decoded_arrays_are_read_only():
    for obj in ([1.0, 2.0], {"b64": "AACAPwAAAEA=", "shape": [2], "dtype": "float32"}):
        array, _ = decode_tensor(obj)
        assert array.tolist() == [1.0, 2.0]
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 5


@pytest.mark.parametrize(
    ("obj", "pointer", "says"),
    [
        ([[1, 2], [3]], "/inputs/t", "ragged"),
        ([1, [2]], "/inputs/t", "ragged"),
        ({"data": [[1], [2, 3]]}, "/inputs/t/data", "ragged"),
        ([1, "x"], "/inputs/t", "found 'x'"),
        ([1, None], "/inputs/t", "found None"),
        ([1, {"a": 1}], "/inputs/t", "found {'a': 1}"),
        (None, "/inputs/t", "a tensor is a number"),
        ("1.5", "/inputs/t", "a tensor is a number"),
        ({}, "/inputs/t", 'needs "data" or "b64"'),
        ({"data": [1], "requires_grads": True}, "/inputs/t/requires_grads", "unknown member"),
        ({"data": [1], "b64": "AAAA"}, "/inputs/t/data", "exclude each other"),
        ({"data": {"x": 1}}, "/inputs/t/data", "data must be"),
        ({"data": [1], "dtype": "int8"}, "/inputs/t/dtype", "dtype must be one of"),
        ({"data": [1], "dtype": ["float32"]}, "/inputs/t/dtype", "dtype must be one of"),
        ({"b64": "AAAA", "shape": [1], "dtype": {"a": 1}}, "/inputs/t/dtype", "dtype must be"),
        ([[1.0], [[[[[1.0]]]]]], "/inputs/t", "ragged"),
        ({"data": [1.0], "requires_grad": "yes"}, "/inputs/t/requires_grad", "true or false"),
        ({"data": [1], "dtype": "int64", "requires_grad": True}, "/inputs/t/requires_grad", ""),
        ({"data": [True], "requires_grad": True}, "/inputs/t/requires_grad", "floating-point"),
        ({"data": [1.0], "dtype": "bool", "requires_grad": True}, "/inputs/t/requires_grad", ""),
        ({"data": [1, 2], "shape": [3]}, "/inputs/t/data", "fits neither"),
        ({"data": [[1, 2, 3]], "shape": [3, 1]}, "/inputs/t/data", "fits neither"),
        ({"data": [1], "shape": [-1]}, "/inputs/t/shape", "non-negative integers"),
        ({"data": [1], "shape": [True]}, "/inputs/t/shape", "non-negative integers"),
        ({"data": [1], "shape": 1}, "/inputs/t/shape", "non-negative integers"),
        ({"data": ["NaN"], "dtype": "int64"}, "/inputs/t/data", "non-finite"),
        ({"data": [1e19], "dtype": "int64"}, "/inputs/t/data", "int64 range"),
        ([2**63], "/inputs/t", "int64 range"),
        ([2**70, "NaN"], "/inputs/t", "int64 range"),
        ({"b64": "AACAPwAAAEA="}, "/inputs/t", 'needs "shape" and "dtype"'),
        ({"b64": 5, "shape": [2], "dtype": "float32"}, "/inputs/t/b64", "base64 string"),
        ({"b64": "AACAPwAAAE=", "shape": [2], "dtype": "float32"}, "/inputs/t/b64", "12 base64"),
        ({"b64": "AACAPwAAAEA=", "shape": [3], "dtype": "float32"}, "/inputs/t/b64", "12 bytes"),
        ({"b64": "AACAPwAAA!A=", "shape": [2], "dtype": "float32"}, "/inputs/t/b64", "invalid"),
        ({"b64": "AACAPwAAAéA=", "shape": [2], "dtype": "float32"}, "/inputs/t/b64", "invalid"),
        ({"b64": "AgE=", "shape": [2], "dtype": "bool"}, "/inputs/t/b64", "0 or 1"),
        ({"b64": "AAAA", "shape": [1], "dtype": "int64"}, "/inputs/t/b64", "8 bytes"),
    ],
)  # fmt: skip
def test_invalid_tensors_are_422_naming_the_field(obj, pointer, says):
    doc = refusal(obj)
    assert (doc["status"], doc["type"]) == (422, "/problems/invalid-tensor")
    assert [e["pointer"] for e in doc["errors"]] == [pointer]
    assert says in doc["errors"][0]["detail"]
    assert doc["detail"].endswith(f"(at {pointer})")


def test_nesting_deeper_than_the_limit_is_refused_without_recursion():
    deep: list = [1.0]
    for _ in range(10_000):
        deep = [deep]
    doc = refusal(deep, max_ndim=32)
    assert doc["errors"][0]["detail"] == "data is nested deeper than 32 dimensions"
    assert refusal({"data": [1], "shape": [1] * 33}, max_ndim=32)["errors"][0]["pointer"] == (
        "/inputs/t/shape"
    )


def test_element_limit_is_checked_from_the_envelope_alone():
    # 10^10 float64 elements would be 80 GB: refused from shape and dtype, nothing decoded.
    start = time.perf_counter()
    doc = refusal({"b64": "AAAA", "shape": [100_000, 100_000], "dtype": "float64"}, max_elements=10)
    assert time.perf_counter() - start < 0.05
    assert (doc["type"], doc["limit"], doc["value"], doc["maximum"]) == (
        "/problems/limit-exceeded",
        "max_tensor_elements",
        10**10,
        10,
    )
    assert refusal([[0] * 4] * 3, max_elements=11)["value"] == 12


def test_total_limit_is_checked_before_any_tensor_is_decoded():
    tensors = {
        "a": [1.0] * 6,
        "b": {"b64": "not base64 at all", "shape": [6], "dtype": "float32"},
    }
    with pytest.raises(ProblemError) as info:
        decode_tensors(tensors, pointer="/inputs", max_elements=10, max_total_elements=11)
    doc = info.value.document()
    assert (doc["limit"], doc["value"], doc["maximum"]) == ("max_total_elements", 12, 11)
    assert doc["errors"][0]["pointer"] == "/inputs"
    with pytest.raises(ProblemError) as info:
        decode_tensors(tensors, pointer="/inputs", max_elements=5)
    assert info.value.document()["errors"][0]["pointer"] == "/inputs/a"


def test_decode_tensors_points_at_escaped_names():
    decoded = decode_tensors({"a": [1.0], "b/c": {"data": [True]}}, pointer="/inputs")
    assert decoded["a"][0].tolist() == [1.0] and decoded["b/c"][0].dtype == np.bool_
    with pytest.raises(ProblemError) as info:
        decode_tensors({"b/c": {"data": [1], "dtype": "x"}}, pointer="/inputs")
    assert info.value.document()["errors"][0]["pointer"] == "/inputs/b~1c/dtype"


@pytest.mark.parametrize(
    ("source", "wire"),
    [("float16", "float32"), ("int32", "int64"), ("uint8", "int64"), ("uint32", "int64")],
)
def test_encode_widens_other_dtypes_losslessly(source, wire):
    sample = np.array([0, 1, 7], dtype=source)
    message = over_the_wire(encode_tensor(sample))
    assert message == {"data": [0, 1, 7], "shape": [3], "dtype": wire}


@pytest.mark.parametrize("dtype", ["complex64", "uint64", "float128", "object"])
def test_encode_refuses_dtypes_the_wire_cannot_hold_exactly(dtype):
    with pytest.raises(TypeError, match="no wire dtype"):
        encode_tensor(np.zeros(2, dtype=dtype))


def test_encode_handles_views_and_foreign_byte_order():
    base = np.arange(6, dtype=">f8").reshape(2, 3)
    view = base.T
    for binary in (False, True):
        array, _ = decode_tensor(over_the_wire(encode_tensor(view, binary=binary)))
        assert array.tolist() == [[0, 3], [1, 4], [2, 5]]


def test_json_renderer_never_writes_null_for_non_finite_numbers():
    content = {
        "plain": float("nan"),
        "numpy": np.float32("-inf"),
        "nested": [{"x": float("inf")}],
        "zero_d": np.array(np.nan),
        "array": np.array([np.nan, 1.0]),
        "ok": 1.25,
    }
    assert jsonio.dumps(content) == (
        b'{"plain":"NaN","numpy":"-Infinity","nested":[{"x":"Infinity"}],'
        b'"zero_d":"NaN","array":["NaN",1.0],"ok":1.25}'
    )
