"""The wire formats, one module each: tensors as JSON (`tensors`: nested numbers, or the
`b64` form's raw bytes in `b64`), strict JSON with non-finite floats as strings (`jsonio`), and
safetensors files (`safetensors`, the one reader of the format). Plain Python and numpy: no
HTTP here, so the session domain and the program endpoints use it alike."""

from service.wire.dtypes import DTYPES, wire_dtype
from service.wire.tensors import decode_tensor, decode_tensors, encode_tensor, extent

__all__ = ["DTYPES", "decode_tensor", "decode_tensors", "encode_tensor", "extent", "wire_dtype"]
