"""Cases for `x[...]` (torch's decomposition into select / slice / unsqueeze / alias, then one
index op) and index_put. Integer indices with repeats check that the gradient scatters back
with duplicates accumulated."""

from . import HIGHER, Case, T
from . import grad_of_square as _grad2


def _get(id, index, shape=(3, 4, 5), **kw):
    return Case(id, lambda m, x: x[index(m)], [T(*shape)], **kw)


CASES = [
    _get("getitem_int", lambda m: 1),  # SelectBackward0
    _get("getitem_negative_int", lambda m: -1),
    _get("getitem_int_int", lambda m: (1, 2)),  # two selects
    _get("getitem_full_slice", lambda m: slice(None)),  # alone, even `:` is a SliceBackward0
    _get("getitem_slice", lambda m: slice(1, None)),
    _get("getitem_slice_step", lambda m: slice(None, None, 2)),
    _get("getitem_slice_clamped", lambda m: slice(-5, 10)),
    _get("getitem_empty_slice", lambda m: slice(3, 1)),
    _get("getitem_full_then_slice", lambda m: (slice(None), slice(1, 3))),  # `:` adds nothing
    _get("getitem_whole_range_then_slice", lambda m: (slice(0, 10), slice(1, 3))),
    _get("getitem_negative_start_then_slice", lambda m: (slice(-3, None), slice(1, 3))),
    _get("getitem_none", lambda m: None),  # UnsqueezeBackward0
    _get("getitem_ellipsis_int", lambda m: (..., 1)),
    _get("getitem_none_ellipsis_none", lambda m: (None, ..., None)),
    _get("getitem_ellipsis", lambda m: ...),  # AliasBackward0
    _get("getitem_all_full_slices", lambda m: (slice(None), slice(None))),  # AliasBackward0
    _get("getitem_empty_tuple", lambda m: ()),
    _get(
        "getitem_mixed", lambda m: (None, slice(1, None), m.tensor([0, 3, 0]), slice(None, None, 2))
    ),
    # -- advanced: one IndexBackward0 after the basic views ----------------------------------
    _get("getitem_list", lambda m: [0, 2]),
    _get("getitem_list_repeats", lambda m: [0, 0, 2, 0, -1]),
    _get("getitem_tensor_repeats", lambda m: m.tensor([[0, 1], [1, 1]])),
    _get("getitem_two_tensors", lambda m: (m.tensor([0, 2]), m.tensor([1, 1]))),
    _get("getitem_tensor_int", lambda m: (m.tensor([0, 2]), 1)),  # select first, then index
    _get("getitem_slice_tensor_int", lambda m: (slice(None), m.tensor([0, 2, 2]), 1)),
    _get("getitem_split_advanced", lambda m: (m.tensor([1, 0]), slice(None), m.tensor([0, 1]))),
    _get(
        "getitem_broadcast_indices",
        lambda m: (m.tensor([[1], [0]]), slice(None), m.tensor([0, 1, 4])),
    ),
    _get("getitem_none_tensor", lambda m: (slice(None), None, m.tensor([1, 0]))),
    _get("getitem_ellipsis_tensors", lambda m: (m.tensor([0, 1]), ..., m.tensor([1, 2]))),
    _get("getitem_true", lambda m: True),  # unsqueeze, then index with [0]
    _get("getitem_int_false", lambda m: (1, False)),
    _get("getitem_bool_list", lambda m: [True, False, True]),
    _get("getitem_mask_int", lambda m: (m.tensor([True, False, True]), 2)),
    _get("getitem_zero_dim_int_tensor", lambda m: m.tensor(1)),  # a select, as an int
    Case("getitem_random_index", lambda m, x, i: x[i], [T(3, 4), T(6, domain="int:0:3")]),
    Case("getitem_mask", lambda m, x, b: x[b], [T(3, 4), T(3, 4, domain="bool")]),
    Case("getitem_mask_rows", lambda m, x, b: x[b, 1:], [T(4, 3), T(4, domain="bool")]),
    Case(
        "getitem_index_pairs",
        lambda m, x, i, j: x[i, j],
        [T(3, 4), T(5, domain="int:0:3"), T(5, domain="int:-4:4")],
    ),
    Case("getitem_scalar_input", lambda m, x: x[None], [T()]),
    Case("reshape_copy_of_strided_slice", lambda m, x: x[::2].reshape(8), [T(3, 4)]),
    # -- index_put: the scatter that is index's gradient -------------------------------------
    Case(
        "index_put_accumulate",
        lambda m, x, v: m.index_put(x, (m.tensor([0, 0, 2]),), v, accumulate=True),
        [T(3, 4), T(3, 4)],
    ),
    Case(
        "index_put_accumulate_broadcast",
        lambda m, x, v: x.index_put((m.tensor([0, 0, 2]), m.tensor([1, 1, 3])), v, True),
        [T(3, 4), T(1)],
    ),
    Case(
        "index_put",
        lambda m, x, v: x.index_put((m.tensor([0, 2]),), v),
        [T(3, 4), T(4)],
    ),
    Case(
        "index_put_constant_values",
        lambda m, x, v: x.index_put((m.tensor([2, 0]), m.tensor([1, 3])), v),
        [T(3, 4), T(2, grad=False)],
    ),
    # -- second derivatives --------------------------------------------------------------------
    Case("getitem_int_grad2", _grad2(lambda m, x: x[1, 2:]), [T(3, 4)], **HIGHER),
    Case("getitem_repeats_grad2", _grad2(lambda m, x: x[[0, 0, 2, 0]]), [T(3, 4)], **HIGHER),
    Case(
        "getitem_mask_grad2",
        _grad2(lambda m, x, b: x[b]),
        [T(3, 4), T(3, 4, domain="bool")],
        **HIGHER,
    ),
    Case(
        "index_put_accumulate_grad2",
        _grad2(lambda m, x, v: x.index_put((m.tensor([0, 0, 2]),), v, accumulate=True)),
        [T(3, 4), T(3, 4)],
        **HIGHER,
    ),
    Case(
        "index_put_grad2",
        _grad2(lambda m, x, v: x.index_put((m.tensor([2, 0]),), v)),
        [T(3, 4), T(4)],
        **HIGHER,
    ),
]
