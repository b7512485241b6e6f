"""Cases for engine.nn.functional: layers, activations over a dim, losses and dropout."""

from . import Case, F, T

LABELS = T(5, domain="int:0:4")
LABELS_IGN = T(6, domain="int:-1:4")  # -1 is ignore_index in these cases
W4 = T(4, domain="positive", grad=False)


def _ce(**kw):
    return lambda m, x, t: F(m).cross_entropy(x, t, **kw)


def _pair(name, **kw):
    return lambda m, x, y: getattr(F(m), name)(x, y, **kw)


def _ce_w(**kw):
    return lambda m, x, t, w: F(m).cross_entropy(x, t, weight=w, **kw)


CASES = [
    # softmax / log_softmax
    Case("softmax", lambda m, x: F(m).softmax(x, dim=1), [T(3, 4)]),
    Case("softmax_neg_dim", lambda m, x: x.softmax(-1), [T(2, 3, 4)]),
    Case("softmax_dim0_3d", lambda m, x: m.softmax(x, 0), [T(2, 3, 4)]),
    Case("log_softmax", lambda m, x: F(m).log_softmax(x, dim=-1), [T(3, 4)]),
    Case("log_softmax_dim1", lambda m, x: x.log_softmax(1), [T(2, 3, 4)]),
    Case("log_softmax_large", lambda m, x: F(m).log_softmax(x * 1000, dim=1), [T(2, 5)],
         notes="stable for logits of magnitude ~1e3"),
    Case("softmax_dtype", lambda m, x: F(m).softmax(x, 1, dtype=m.float64), [T(3, 4)],
         gradcheck=False, float32=False, notes="float64 cast inside; checked in float64"),
    # linear: torch's addmm / mm / view graphs
    Case("linear_2d_bias", lambda m, x, w, b: F(m).linear(x, w, b), [T(3, 4), T(5, 4), T(5)]),
    Case("linear_2d", lambda m, x, w: F(m).linear(x, w), [T(3, 4), T(5, 4)]),
    Case("linear_3d_bias", lambda m, x, w, b: F(m).linear(x, w, b),
         [T(2, 3, 4), T(5, 4), T(5)]),
    Case("linear_3d", lambda m, x, w: F(m).linear(x, w), [T(2, 3, 4), T(5, 4)]),
    Case("linear_1d_bias", lambda m, x, w, b: F(m).linear(x, w, b), [T(4), T(5, 4), T(5)]),
    Case("linear_1d", lambda m, x, w: F(m).linear(x, w), [T(4), T(5, 4)]),
    Case("linear_frozen_x", lambda m, x, w, b: F(m).linear(x, w, b),
         [T(3, 4, grad=False), T(5, 4), T(5)]),
    Case("linear_2d_t", lambda m, x, w, b: F(m).linear(x.t(), w, b), [T(4, 3), T(5, 4), T(5)]),
    Case("linear_noncontig", lambda m, x, w, b: F(m).linear(x.transpose(0, 1), w, b),
         [T(3, 2, 4), T(5, 4), T(5)]),
    # nll_loss
    Case("nll_loss", lambda m, x, t: F(m).nll_loss(x, t), [T(5, 4), LABELS]),
    Case("nll_loss_sum_w", lambda m, x, t, w: F(m).nll_loss(x, t, w, reduction="sum"),
         [T(5, 4), LABELS, W4]),
    Case("nll_loss_none_ign", lambda m, x, t: F(m).nll_loss(x, t, ignore_index=-1,
                                                             reduction="none"),
         [T(6, 4), LABELS_IGN]),
    Case("nll_loss_1d", lambda m, x: F(m).nll_loss(x, m.tensor(2)), [T(4)]),
    Case("nll_loss_4d", lambda m, x, t: F(m).nll_loss(x, t),
         [T(2, 3, 2, 2), T(2, 2, 2, domain="int:0:3")]),
    # cross_entropy with class indices
    Case("cross_entropy", _ce(), [T(5, 4), LABELS]),
    Case("cross_entropy_sum", _ce(reduction="sum"), [T(5, 4), LABELS]),
    Case("cross_entropy_none", _ce(reduction="none"), [T(5, 4), LABELS]),
    Case("cross_entropy_ignore", _ce(ignore_index=-1), [T(6, 4), LABELS_IGN]),
    Case("cross_entropy_weight", _ce_w(ignore_index=-1), [T(6, 4), LABELS_IGN, W4]),
    Case("cross_entropy_1d", lambda m, x: F(m).cross_entropy(x, m.tensor(1)), [T(4)]),
    Case("cross_entropy_3d", _ce(), [T(2, 4, 5), T(2, 5, domain="int:0:4")]),
    Case("cross_entropy_3d_none", _ce(reduction="none"), [T(2, 4, 5), T(2, 5, domain="int:0:4")]),
    Case("cross_entropy_4d", _ce(), [T(2, 3, 2, 2), T(2, 2, 2, domain="int:0:3")]),
    Case("cross_entropy_5d_w", _ce_w(reduction="sum"),
         [T(2, 4, 2, 1, 2), T(2, 2, 1, 2, domain="int:0:4"), W4]),
    # label smoothing (torch's C++ decomposition, node for node)
    Case("ce_smooth", _ce(label_smoothing=0.1), [T(5, 4), LABELS]),
    Case("ce_smooth_ignore_sum", _ce(label_smoothing=0.2, ignore_index=-1, reduction="sum"),
         [T(6, 4), LABELS_IGN]),
    Case("ce_smooth_none", _ce(label_smoothing=0.3, ignore_index=-1, reduction="none"),
         [T(6, 4), LABELS_IGN]),
    Case("ce_smooth_weight", _ce_w(label_smoothing=0.1, ignore_index=-1),
         [T(6, 4), LABELS_IGN, W4]),
    Case("ce_smooth_3d", _ce(label_smoothing=0.1), [T(2, 4, 3), T(2, 3, domain="int:0:4")]),
    # probability targets
    Case("ce_probs", _ce(), [T(5, 4), T(5, 4, domain="probs", grad=False)]),
    Case("ce_probs_grad_target", _ce(reduction="sum"), [T(5, 4), T(5, 4, domain="probs")]),
    Case("ce_probs_none_3d", _ce(reduction="none"), [T(2, 4, 3), T(2, 4, 3, domain="probs")]),
    Case("ce_probs_smooth", _ce(label_smoothing=0.2), [T(5, 4), T(5, 4, domain="probs")]),
    Case("ce_probs_weight", _ce_w(), [T(5, 4), T(5, 4, domain="probs", grad=False), W4]),
    Case("ce_probs_1d", _ce(), [T(4), T(4, domain="probs")]),
    # regression losses
    Case("mse_loss", lambda m, x, y: F(m).mse_loss(x, y), [T(3, 4), T(3, 4)]),
    Case("mse_loss_sum", _pair("mse_loss", reduction="sum"), [T(3, 4), T(3, 4)]),
    Case("mse_loss_none", _pair("mse_loss", reduction="none"), [T(3, 4), T(3, 4)]),
    Case("mse_loss_bcast", _pair("mse_loss"), [T(3, 4), T(4)]),
    Case("mse_loss_weight", lambda m, x, y, w: F(m).mse_loss(x, y, weight=w),
         [T(3, 4), T(3, 4), T(3, 4, domain="positive")]),
    Case("l1_loss", lambda m, x, y: F(m).l1_loss(x, y), [T(3, 4), T(3, 4)]),
    Case("l1_loss_sum", _pair("l1_loss", reduction="sum"), [T(3, 4), T(3, 4)]),
    Case("l1_loss_none", _pair("l1_loss", reduction="none"), [T(3, 4), T(3, 4)]),
    Case("l1_loss_bcast", _pair("l1_loss", reduction="sum"), [T(3, 1), T(3, 4)]),
    Case("l1_loss_weight", lambda m, x, y, w: F(m).l1_loss(x, y, reduction="none", weight=w),
         [T(3, 4), T(3, 4), T(3, 4, domain="positive", grad=False)]),
    # binary_cross_entropy_with_logits
    Case("bce_logits", lambda m, x, y: F(m).binary_cross_entropy_with_logits(x, y),
         [T(3, 4), T(3, 4, domain="unit")]),
    Case("bce_logits_large", lambda m, x, y: F(m).binary_cross_entropy_with_logits(x * 100, y),
         [T(3, 4), T(3, 4, domain="unit")], notes="no overflow for logits of magnitude ~100"),
    Case("bce_logits_none_pw",
         lambda m, x, y, p: F(m).binary_cross_entropy_with_logits(x, y, reduction="none",
                                                                    pos_weight=p),
         [T(3, 4), T(3, 4, domain="unit"), T(4, domain="positive", grad=False)]),
    Case("bce_logits_sum_w_pw",
         lambda m, x, y, w, p: F(m).binary_cross_entropy_with_logits(
             x, y, w, reduction="sum", pos_weight=p),
         [T(3, 4), T(3, 4, domain="unit"), T(3, 1, domain="positive", grad=False),
          T(4, domain="positive", grad=False)]),
    # dropout: only the deterministic settings can be compared with torch
    Case("dropout_eval", lambda m, x: F(m).dropout(x, 0.5, training=False) * 2, [T(3, 4)]),
    Case("dropout_p0", lambda m, x: F(m).dropout(x, 0.0) * 2, [T(3, 4)]),
    Case("dropout_p1", lambda m, x: F(m).dropout(x, 1.0), [T(3, 4)],
         notes="training dropout draws a random mask torch cannot reproduce: these cases "
               "pin the deterministic settings (p=1 is MulBackward0 by zeros, as torch); "
               "tests/engine/test_dropout.py checks the random mask's statistics and "
               "gradient"),
]  # fmt: skip

CASES += [
    Case("masked_fill", lambda m, x, mk: x.masked_fill(mk, 0.5), [T(3, 4), T(3, 4, domain="bool")]),
    Case(
        "masked_fill_bcast",
        lambda m, x, mk: m.masked_fill(x, mk, -1.0),
        [T(3, 4), T(4, domain="bool")],
    ),
]
