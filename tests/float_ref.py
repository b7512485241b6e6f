"""Judging a float32 result against torch without depending on the BLAS kernel.

Two float32 results of the same computation (ours and torch's, or torch's under two OpenBLAS
kernels) differ by their summation orders, element by element, by amounts no library
guarantees. What is guaranteed is how far each is from the exact answer. So a float32 result
is judged against torch's float64 result of the same inputs: its relative error (in norm)
may be at most FACTOR times torch's own float32 relative error, plus a floor of a few float32
ulps for results torch happens to get exactly. A wrong formula misses by orders of magnitude;
a different but sound summation order stays within a small multiple."""

from __future__ import annotations

import numpy as np

FACTOR = 4.0
FLOOR = 32 * float(np.finfo(np.float32).eps)  # 3.8e-6: a few ulps over a long reduction


def to_numpy(t) -> np.ndarray:
    """An engine or torch tensor, or anything array-like, as a numpy array."""
    if hasattr(t, "detach"):
        t = t.detach()
    if hasattr(t, "numpy"):
        return np.asarray(t.numpy())
    return np.asarray(t)


def rel_error(x: np.ndarray, ref: np.ndarray) -> float:
    """||x - ref|| / ||ref|| in float64 (the absolute norm when ref is all zeros)."""
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    scale = float(np.linalg.norm(ref))
    diff = float(np.linalg.norm(x - ref))
    return diff / scale if scale else diff


def assert_float32_close(ours, torch32, torch64, what: str = "", factor: float = FACTOR) -> None:
    """`ours` (float32) is no farther from torch's float64 result than `factor` times torch's
    own float32 result is, give or take FLOOR."""
    a, t32, t64 = to_numpy(ours), to_numpy(torch32), to_numpy(torch64)
    assert a.shape == t32.shape == t64.shape, f"{what}: shapes {a.shape}, {t32.shape}, {t64.shape}"
    assert a.dtype == t32.dtype == np.float32, f"{what}: dtypes {a.dtype}, {t32.dtype}"
    # NaN and infinities are not rounding: they sit where torch's float32 result has them.
    finite = np.isfinite(a)
    np.testing.assert_array_equal(finite, np.isfinite(t32), err_msg=f"{what}: non-finite places")
    np.testing.assert_array_equal(a[~finite], t32[~finite], err_msg=f"{what}: non-finite values")
    finite &= np.isfinite(t64)
    ours_err, torch_err = rel_error(a[finite], t64[finite]), rel_error(t32[finite], t64[finite])
    bound = factor * torch_err + FLOOR
    assert ours_err <= bound, (
        f"{what}: relative error {ours_err:.3g} from torch's float64 result, over "
        f"{factor:g} x torch float32's own {torch_err:.3g} + {FLOOR:.2g}"
    )
