"""Cases for squeeze, reshape's three paths, flatten/unflatten, movedim, repeat, contiguous,
cat/stack, split/chunk/unbind (ops with several outputs), select/narrow and the scatters."""

from . import HIGHER, Case, T
from . import grad_of_square as _grad2

CASES = [
    Case("squeeze_all", lambda m, x: x.squeeze(), [T(3, 1, 4, 1)]),  # SqueezeBackward0
    Case("squeeze_dim", lambda m, x: x.squeeze(-1), [T(3, 1, 4, 1)]),  # SqueezeBackward1
    Case("squeeze_dim_noop", lambda m, x: m.squeeze(x, 0), [T(3, 1, 4)]),
    Case("squeeze_dims", lambda m, x: x.squeeze((0, 1)), [T(3, 1, 4, 1)]),  # SqueezeBackward2
    Case("squeeze_dims_list", lambda m, x: m.squeeze(x, [1]), [T(3, 1, 4, 1)]),
    Case("reshape_alias", lambda m, x: x.narrow(1, 0, 2).reshape(3, 2, 1), [T(3, 4)]),
    Case("reshape_alias_transposed", lambda m, x: x.t().reshape(4, 3), [T(3, 4)]),
    Case("reshape_tuple", lambda m, x: m.reshape(x, (2, -1)), [T(3, 4)]),
    Case("reshape_as", lambda m, x, y: x.reshape_as(y), [T(6), T(2, 3, grad=False)]),
    Case("view_as", lambda m, x, y: x.view_as(y), [T(6), T(3, 2, grad=False)]),
    Case("expand_as", lambda m, x, y: x.expand_as(y), [T(3, 1), T(2, 3, 4, grad=False)]),
    Case("expand_as_0d", lambda m, x, y: x.expand_as(y) * 2, [T(), T(grad=False)]),
    Case("expand_0d_empty_size", lambda m, x: x.expand(()) * 2, [T()]),
    Case("repeat_0d_empty_reps", lambda m, x: x.repeat(()) * 2, [T()]),
    Case("flatten", lambda m, x: x.flatten(1), [T(2, 3, 4)]),
    Case("flatten_all", lambda m, x: m.flatten(x), [T(2, 3, 4)]),
    Case("flatten_noncontiguous", lambda m, x: x.transpose(0, 1).flatten(1), [T(2, 3, 4)]),
    Case("flatten_same_dim", lambda m, x: x.flatten(1, 1) * 2, [T(2, 3)]),
    Case("unflatten", lambda m, x: x.unflatten(1, (2, -1)), [T(3, 4)]),
    Case("movedim", lambda m, x: m.movedim(x, 0, 2), [T(2, 3, 4)]),
    Case("movedim_tuple", lambda m, x: x.movedim((0, 1), (2, 0)), [T(2, 3, 4)]),
    Case("repeat", lambda m, x: x.repeat(2, 1, 3), [T(2, 3)]),
    Case("repeat_same", lambda m, x: x.repeat((1, 2)), [T(2, 3)]),
    Case("contiguous_copy", lambda m, x: x.t().contiguous(), [T(2, 3)]),
    Case("contiguous_noop", lambda m, x: x.contiguous() * 2, [T(2, 3)]),
    # -- joining ---------------------------------------------------------------------------
    Case("cat", lambda m, x, y: m.cat([x, y]), [T(2, 3), T(1, 3)]),
    Case("cat_dim", lambda m, x, y, z: m.cat((x, y, z), dim=-1), [T(2, 3), T(2, 1), T(2, 2)]),
    Case("cat_legacy_empty", lambda m, x, e, y: m.cat([x, e, y]), [T(2, 3), T(0), T(1, 3)]),
    Case("cat_promotes", lambda m, x, i: m.cat([x, i]), [T(3), T(2, domain="int:0:5")]),
    Case("cat_partial_grad", lambda m, x, y: m.cat([x, y], 1), [T(2, 2, grad=False), T(2, 3)]),
    Case("stack", lambda m, x, y: m.stack([x, y]), [T(2, 3), T(2, 3)]),
    Case("stack_last", lambda m, x, y: m.stack([x, y], dim=-1), [T(2, 3), T(2, 3)]),
    # -- splitting: several outputs, one node ------------------------------------------------
    Case("split", lambda m, x: m.split(x, 2), [T(5, 2)]),  # SplitBackward0, sizes 2, 2, 1
    Case("split_sizes", lambda m, x: x.split([1, 4]), [T(5, 2)]),  # SplitWithSizesBackward0
    Case("split_dim", lambda m, x: x.split(2, dim=1), [T(2, 5)]),
    Case("split_one_output_used", lambda m, x: m.split(x, [1, 2, 2])[1] * 3, [T(5, 2)]),
    Case("chunk", lambda m, x: m.chunk(x, 3), [T(5, 2)]),
    Case("chunk_dim", lambda m, x: x.chunk(2, 1), [T(2, 6)]),
    Case("unbind", lambda m, x: m.unbind(x, 1), [T(2, 3)]),
    Case("unbind_one_used", lambda m, x: x.unbind()[0], [T(2, 3)]),
    # One piece: a node with one output whose VJP still takes the tuple of its gradients.
    Case("split_one_piece", lambda m, x: m.split(x, 10), [T(3, 2)]),
    Case("split_one_piece_dim", lambda m, x: x.split(2, 1)[0] * 2, [T(3, 2)]),
    Case("split_sizes_one_piece", lambda m, x: x.split([3]), [T(3, 2)]),
    Case("split_empty_one_piece", lambda m, x: x.split(2), [T(0, 2)]),
    Case("chunk_one_piece", lambda m, x: m.chunk(x, 2), [T(1, 3)]),
    Case("chunk_into_one", lambda m, x: x.chunk(1, 1), [T(2, 3)]),
    Case("unbind_one_piece", lambda m, x: m.unbind(x, 0), [T(1, 3)]),
    Case("unbind_one_piece_scalar", lambda m, x: x.unbind()[0] * 3, [T(1)]),
    # -- parts and scatters ------------------------------------------------------------------
    Case("select", lambda m, x: m.select(x, 1, -2), [T(3, 4)]),
    Case("select_method", lambda m, x: x.select(0, 2), [T(3, 4)]),
    Case("narrow", lambda m, x: m.narrow(x, 1, 1, 2), [T(3, 4)]),
    Case("narrow_negative_start", lambda m, x: x.narrow(0, -2, 2), [T(3, 4)]),
    Case("slice_scatter", lambda m, x, s: m.slice_scatter(x, s, 1, 1, 3), [T(3, 4), T(3, 2)]),
    Case(
        "slice_scatter_step",
        lambda m, x, s: x.slice_scatter(s, dim=0, start=0, end=None, step=2),
        [T(5, 4), T(3, 4)],
    ),
    Case("select_scatter", lambda m, x, s: m.select_scatter(x, s, 0, 1), [T(3, 4), T(4)]),
    Case(
        "select_scatter_base_only",
        lambda m, x, s: x.select_scatter(s, 1, -1),
        [T(3, 4), T(3, grad=False)],
    ),
    # -- second derivatives --------------------------------------------------------------------
    Case("squeeze_grad2", _grad2(lambda m, x: x.squeeze(1)), [T(3, 1, 2)], **HIGHER),
    Case("reshape_alias_grad2", _grad2(lambda m, x: x.t().reshape(4, 3)), [T(3, 4)], **HIGHER),
    Case("movedim_grad2", _grad2(lambda m, x: x.movedim(0, 2)), [T(2, 3, 4)], **HIGHER),
    Case("repeat_grad2", _grad2(lambda m, x: x.repeat(2, 1, 3)), [T(2, 3)], **HIGHER),
    Case("cat_grad2", _grad2(lambda m, x, y: m.cat([x, y], 1)), [T(2, 3), T(2, 1)], **HIGHER),
    Case("stack_grad2", _grad2(lambda m, x, y: m.stack([x, y], 1)), [T(2, 3), T(2, 3)], **HIGHER),
    Case("split_grad2", _grad2(lambda m, x: x.split([1, 4])[1]), [T(5, 2)], **HIGHER),
    Case("chunk_grad2", _grad2(lambda m, x: x.chunk(2, 1)), [T(2, 5)], **HIGHER),
    Case("unbind_grad2", _grad2(lambda m, x: x.unbind(1)[2]), [T(2, 3)], **HIGHER),
    Case("split_one_piece_grad2", _grad2(lambda m, x: x.split(4)), [T(3, 2)], **HIGHER),
    Case("chunk_one_piece_grad2", _grad2(lambda m, x: x.chunk(3)), [T(1, 2)], **HIGHER),
    Case("unbind_one_piece_grad2", _grad2(lambda m, x: x.unbind(1)), [T(2, 1)], **HIGHER),
    Case("select_grad2", _grad2(lambda m, x: x.select(1, -2)), [T(3, 4)], **HIGHER),
    Case("narrow_grad2", _grad2(lambda m, x: x.narrow(1, 1, 2)), [T(3, 4)], **HIGHER),
    Case(
        "slice_scatter_grad2",
        _grad2(lambda m, x, s: m.slice_scatter(x, s, 1, 1, 3)),
        [T(3, 4), T(3, 2)],
        **HIGHER,
    ),
    Case(
        "select_scatter_grad2",
        _grad2(lambda m, x, s: m.select_scatter(x, s, 0, 1)),
        [T(3, 4), T(4)],
        **HIGHER,
    ),
]
