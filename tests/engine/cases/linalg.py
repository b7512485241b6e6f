"""Cases for matrix products. matmul is checked for every rank combination at::matmul
distinguishes (dot, mv, unsqueeze/mm/squeeze_, mm, folding into mm/mv, expand/reshape/bmm),
with and without a gradient on each side and on non-contiguous operands, because torch's
choice of path (and so its grad_fn graph) depends on them."""

from . import HIGHER, Case, T
from . import grad_of_square as _grad2


def _mm_case(id, a, b, ga=True, gb=True, **kw):
    return Case(id, lambda m, x, y: x @ y, [T(*a, grad=ga), T(*b, grad=gb)], **kw)


CASES = [
    Case("mm", lambda m, x, y: m.mm(x, y), [T(2, 3), T(3, 4)]),
    Case("mm_method", lambda m, x, y: x.mm(y), [T(3, 3), T(3, 2, grad=False)]),
    Case("bmm", lambda m, x, y: m.bmm(x, y), [T(2, 2, 3), T(2, 3, 4)]),
    Case("mv", lambda m, x, v: m.mv(x, v), [T(2, 3), T(3)]),
    Case("dot", lambda m, x, y: m.dot(x, y), [T(4), T(4)]),
    Case("addmm", lambda m, b, x, y: m.addmm(b, x, y), [T(4), T(2, 3), T(3, 4)]),
    Case(
        "addmm_beta_alpha",
        lambda m, b, x, y: m.addmm(b, x, y, beta=0.5, alpha=-2.0),
        [T(2, 1), T(2, 3), T(3, 4)],
    ),
    Case("addmm_method", lambda m, b, x, y: b.addmm(x, y), [T(2, 4), T(2, 3), T(3, 4)]),
    Case("addmm_beta0", lambda m, b, x, y: m.addmm(b, x, y, beta=0), [T(2, 4), T(2, 3), T(3, 4)]),
    # -- matmul, one case per path of at::matmul ---------------------------------------------
    _mm_case("matmul_1d_1d", (3,), (3,)),
    _mm_case("matmul_2d_1d", (2, 3), (3,)),
    _mm_case("matmul_1d_2d", (3,), (3, 4)),  # unsqueeze, mm, squeeze_ (SqueezeBackward4)
    _mm_case("matmul_2d_2d", (2, 3), (3, 4)),
    _mm_case("matmul_3d_2d", (5, 2, 3), (3, 4)),  # folded: view, mm, _unsafe_view
    _mm_case("matmul_4d_2d", (2, 5, 2, 3), (3, 4)),
    _mm_case("matmul_3d_1d", (5, 2, 3), (3,)),  # folded into mv
    _mm_case("matmul_3d_2d_left_grad", (5, 2, 3), (3, 4), gb=False),
    _mm_case("matmul_3d_2d_right_grad", (5, 2, 3), (3, 4), ga=False),
    _mm_case("matmul_1d_3d", (3,), (5, 3, 4)),  # transpose, clone, _unsafe_view, mv
    _mm_case("matmul_1d_3d_no_left_grad", (3,), (5, 3, 4), ga=False),  # expand/view/bmm
    _mm_case("matmul_2d_3d", (2, 3), (5, 3, 4)),  # folded with t() and a final contiguous
    _mm_case("matmul_2d_3d_no_left_grad", (2, 3), (5, 3, 4), ga=False),
    _mm_case("matmul_2d_4d", (2, 3), (2, 5, 3, 4)),
    _mm_case("matmul_2d_1x3d", (2, 3), (1, 3, 4)),  # _reshape_alias of a transposed batch
    _mm_case("matmul_3d_3d", (5, 2, 3), (5, 3, 4)),  # expand, view, bmm, _unsafe_view
    _mm_case("matmul_4d_4d", (2, 5, 2, 3), (2, 5, 3, 4)),
    _mm_case("matmul_batch_1_left", (1, 2, 3), (5, 3, 4)),  # squeeze(0) then the 2D @ 3D path
    _mm_case("matmul_batch_1_right", (5, 2, 3), (1, 3, 4)),  # squeeze(0) then folded
    _mm_case("matmul_batch_1_right_nograd", (5, 2, 3), (1, 3, 4), gb=False),  # plain bmm
    _mm_case("matmul_broadcast", (2, 1, 2, 3), (5, 3, 4)),  # clone + _unsafe_view of expand
    _mm_case("matmul_broadcast_both", (2, 1, 2, 3), (1, 5, 3, 4)),
    _mm_case("matmul_broadcast_alias", (1, 1, 2, 3), (5, 3, 4)),  # ReshapeAliasBackward0
    _mm_case("matmul_4d_1d", (2, 5, 2, 3), (3,)),
    _mm_case("matmul_1d_4d", (3,), (2, 5, 3, 4)),
    Case(
        "matmul_noncontiguous_3d_2d",
        lambda m, x, y: x.transpose(1, 2) @ y,  # not foldable without a copy: bmm path
        [T(5, 3, 2), T(3, 4, grad=False)],
    ),
    Case(
        "matmul_noncontiguous_3d_2d_grad",
        lambda m, x, y: x.transpose(1, 2) @ y,  # folded anyway: clone + _unsafe_view
        [T(5, 3, 2), T(3, 4)],
    ),
    Case(
        "matmul_noncontiguous_3d_1d",
        lambda m, x, v: x.transpose(1, 2) @ v,  # bmm with an unsqueezed vector, squeeze(-1)
        [T(5, 3, 2), T(3, grad=False)],
    ),
    Case("matmul_function", lambda m, x, y: m.matmul(x, y), [T(2, 3), T(3)]),
    Case("matmul_method", lambda m, x, y: x.matmul(y), [T(4, 2, 3), T(4, 3, 2)]),
    Case("matmul_rmatmul_T", lambda m, x: x.T @ x, [T(3, 2)]),
    # -- second derivatives --------------------------------------------------------------------
    Case("mm_grad2", _grad2(lambda m, x, y: m.mm(x, y)), [T(2, 3), T(3, 4)], **HIGHER),
    Case("mv_grad2", _grad2(lambda m, x, v: m.mv(x, v)), [T(2, 3), T(3)], **HIGHER),
    Case("dot_grad2", _grad2(lambda m, x, y: m.dot(x, y)), [T(3), T(3)], **HIGHER),
    Case("bmm_grad2", _grad2(lambda m, x, y: m.bmm(x, y)), [T(2, 2, 3), T(2, 3, 4)], **HIGHER),
    Case(
        "addmm_grad2",
        _grad2(lambda m, b, x, y: m.addmm(b, x, y, beta=0.5, alpha=2.0)),
        [T(4), T(2, 3), T(3, 4)],
        **HIGHER,
    ),
    Case("matmul_1d_2d_grad2", _grad2(lambda m, x, y: x @ y), [T(3), T(3, 4)], **HIGHER),
    Case("matmul_3d_2d_grad2", _grad2(lambda m, x, y: x @ y), [T(5, 2, 3), T(3, 4)], **HIGHER),
    Case("matmul_2d_3d_grad2", _grad2(lambda m, x, y: x @ y), [T(2, 3), T(5, 3, 4)], **HIGHER),
    Case(
        "matmul_broadcast_grad2",
        _grad2(lambda m, x, y: x @ y),
        [T(2, 1, 2, 3), T(5, 3, 4)],
        **HIGHER,
    ),
]
