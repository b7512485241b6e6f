"""service.binary: the request a safetensors body stands for."""

import numpy as np
import pytest

from service.problems import ProblemError
from service.wire import decode_tensor
from service.wire import safetensors as binary


def test_tensors_take_their_pointers_places_in_document_order():
    tensors = {f"/batches/{i}/inputs/x": np.full(2, i, np.float32) for i in range(12)}
    tensors["/inputs/a~1b~0c"] = np.arange(3, dtype=np.int64)
    document = binary.document(binary.encode({"batches": [], "include": ["grads"]}, tensors))
    assert document["include"] == ["grads"]
    assert [b["inputs"]["x"][0] for b in document["batches"]] == list(range(12))
    assert document["inputs"]["a/b~c"].tolist() == [0, 1, 2]
    assert not document["inputs"]["a/b~c"].flags.writeable  # the client's values


def test_a_tensor_fills_the_object_the_request_has_for_it():
    data = binary.encode({"inputs": {"a": {"requires_grad": True}}},
                         {"/inputs/a": np.array([2.0, 3.0], np.float64)})  # fmt: skip
    value, requires_grad = decode_tensor(binary.document(data)["inputs"]["a"], pointer="/inputs/a")
    assert requires_grad and value.dtype == np.float64 and value.tolist() == [2.0, 3.0]


def test_a_raw_tensor_keeps_its_dtype_and_shape():
    raw = np.arange(6, dtype=np.float64).reshape(2, 3)
    document = binary.document(binary.encode({}, {"/x": raw, "/m": raw > 2}))
    x, _ = decode_tensor(document["x"])
    m, _ = decode_tensor(document["m"])
    assert x.dtype == np.float64 and x.shape == (2, 3) and m.dtype == np.bool_
    with pytest.raises(ProblemError, match="own shape and dtype"):
        decode_tensor({"data": document["x"], "dtype": "float32"})


def test_no_metadata_is_an_empty_request():
    from safetensors.numpy import save

    assert binary.document(save({"/y": np.zeros(1, np.float32)}))["y"].tolist() == [0.0]
