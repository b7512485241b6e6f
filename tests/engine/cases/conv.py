"""Cases for convolution, pooling and batch norm (engine.nn.functional vs torch's)."""

from . import Case, F, T

C3 = T(3, grad=False)  # running mean
V3 = T(3, domain="positive", grad=False)  # running variance
W3, B3 = T(3, domain="positive"), T(3)


def _conv(**kw):
    return lambda m, x, w, *b: F(m).conv2d(x, w, *b, **kw)


def _mp(*a, **kw):
    return lambda m, x: F(m).max_pool2d(x, *a, **kw)


def _ap(*a, **kw):
    return lambda m, x: F(m).avg_pool2d(x, *a, **kw)


def _aap(size):
    return lambda m, x: F(m).adaptive_avg_pool2d(x, size)


def _bn(**kw):
    return lambda m, x, rm, rv, *wb: F(m).batch_norm(x, rm, rv, *wb, **kw)


def _gg(f, power=2):
    """First derivatives of sum(f(...)**power) with create_graph, so the harness differentiates
    them again (second derivatives against torch's, gradcheck of the gradient)."""

    def fn(m, *xs):
        leaves = [x for x in xs if x is not None and x.requires_grad]
        return m.autograd.grad((f(m, *xs) ** power).sum(), leaves, create_graph=True)

    return fn


CASES = [
    # conv2d: stride / padding / dilation / groups, bias or not, torch's argument forms
    Case("conv2d", _conv(), [T(2, 3, 7, 7), T(4, 3, 3, 3), T(4)]),
    Case("conv2d_nobias_s2_p1", _conv(stride=2, padding=1), [T(2, 3, 7, 7), T(4, 3, 3, 3)]),
    Case("conv2d_dilation", _conv(padding=2, dilation=2), [T(2, 3, 7, 7), T(4, 3, 3, 3), T(4)]),
    Case("conv2d_asym", _conv(stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
         [T(2, 3, 8, 7), T(4, 3, 3, 2), T(4)]),
    Case("conv2d_groups", _conv(groups=2, padding=1), [T(2, 4, 6, 6), T(6, 2, 3, 3), T(6)]),
    Case("conv2d_depthwise", _conv(groups=4, padding=1), [T(2, 4, 6, 5), T(4, 1, 3, 3), T(4)]),
    Case("conv2d_depthwise_x2", _conv(groups=4, stride=2), [T(2, 4, 7, 7), T(8, 1, 3, 3)]),
    Case("conv2d_same", _conv(padding="same"), [T(2, 3, 6, 6), T(4, 3, 3, 3), T(4)], atol=1e-5,
         notes="the weight gradient sums 72 products: float32 order differences ~2e-6"),
    Case("conv2d_same_even", _conv(padding="same", dilation=(1, 2)),
         [T(2, 3, 6, 7), T(4, 3, 2, 3)], notes="torch pads the odd side first: ConstantPadNd"),
    Case("conv2d_valid", _conv(padding="valid"), [T(1, 2, 5, 5), T(3, 2, 2, 2), T(3)]),
    Case("conv2d_unbatched", _conv(padding=1), [T(3, 5, 5), T(4, 3, 3, 3), T(4)]),
    Case("conv2d_unbatched_same_even", _conv(padding="same"), [T(2, 5, 5), T(3, 2, 2, 2)]),
    Case("conv2d_1x1_s2", _conv(stride=2), [T(2, 4, 7, 7), T(5, 4, 1, 1)]),
    Case("conv2d_1x1", _conv(), [T(2, 4, 3, 3), T(5, 4, 1, 1), T(5)]),
    Case("conv2d_stem", _conv(stride=2, padding=3), [T(1, 3, 16, 16), T(4, 3, 7, 7)], atol=1e-5,
         notes="ResNet-18's first layer, smaller; float32 sums of 147 products differ from "
               "torch's by ~1e-6 absolute (summation order), hence the atol"),
    Case("conv2d_frozen_input", _conv(stride=2, padding=3),
         [T(1, 3, 16, 16, grad=False), T(4, 3, 7, 7), T(4)], atol=1e-5,
         notes="the weight gradient sums 64 products: float32 order differences ~1e-6"),
    Case("conv2d_frozen_weight", _conv(padding=1), [T(2, 3, 6, 6), T(4, 3, 3, 3, grad=False)]),
    Case("conv2d_big_padding", _conv(padding=3), [T(1, 2, 4, 4), T(3, 2, 3, 3), T(3)]),
    Case("conv2d_many_out", _conv(padding=1), [T(1, 2, 3, 3), T(9, 2, 3, 3), T(9)],
         notes="small image, many channels: the input gradient takes the col2im path"),
    Case("conv2d_list_args", _conv(stride=[1], padding=[1, 0], dilation=[1]),
         [T(1, 2, 5, 5), T(3, 2, 3, 3)]),
    # max_pool2d
    Case("max_pool2d", _mp(2), [T(2, 3, 6, 6, domain="distinct")]),
    Case("max_pool2d_resnet", _mp(3, 2, 1), [T(2, 3, 8, 8, domain="distinct")]),
    Case("max_pool2d_ceil", _mp(3, 2, 1, ceil_mode=True), [T(1, 2, 6, 6, domain="distinct")]),
    Case("max_pool2d_ceil_nopad", _mp(2, ceil_mode=True), [T(1, 2, 5, 7, domain="distinct")]),
    Case("max_pool2d_dilation", _mp(2, 1, 1, 2), [T(1, 2, 6, 6, domain="distinct")]),
    Case("max_pool2d_asym", _mp((3, 2), (1, 2), (1, 0)), [T(2, 2, 5, 6, domain="distinct")]),
    Case("max_pool2d_ceil_dil", _mp(3, 2, 1, 2, True), [T(1, 2, 8, 7, domain="distinct")]),
    Case("max_pool2d_unbatched", _mp(2, 1), [T(2, 5, 5, domain="distinct")]),
    Case("max_pool2d_indices", _mp(3, 2, 1, return_indices=True),
         [T(2, 2, 7, 7, domain="distinct")]),
    Case("max_pool2d_ties_int", _mp(3, 1, 1, return_indices=True),
         [T(2, 2, 6, 6, domain="int:0:3")], grad=False,
         notes="many ties: the index is the first maximum of the window, as torch"),
    # avg_pool2d
    Case("avg_pool2d", _ap(2), [T(2, 3, 6, 6)]),
    Case("avg_pool2d_s2_p1", _ap(3, 2, 1), [T(2, 3, 7, 7)]),
    Case("avg_pool2d_exclude_pad", _ap(3, 2, 1, count_include_pad=False), [T(2, 3, 7, 7)]),
    Case("avg_pool2d_ceil", _ap(3, 2, 1, ceil_mode=True), [T(1, 2, 6, 6)]),
    Case("avg_pool2d_ceil_exclude", _ap(3, 2, 1, True, False), [T(1, 2, 6, 6)]),
    Case("avg_pool2d_ceil_nopad", _ap(2, ceil_mode=True), [T(1, 2, 5, 7)]),
    Case("avg_pool2d_divisor", _ap(2, 1, 1, divisor_override=3), [T(1, 2, 5, 5)]),
    Case("avg_pool2d_asym", _ap((3, 2), (2, 1), (1, 0)), [T(2, 2, 6, 5)]),
    Case("avg_pool2d_unbatched", _ap(2, 1), [T(2, 4, 4)]),
    Case("avg_pool2d_int", _ap(2, 1), [T(1, 2, 4, 4, domain="int:-9:9")], grad=False,
         notes="integer input: the sum divided with C++'s truncation"),
    # adaptive_avg_pool2d: 1x1 is a mean (MeanBackward1), else AdaptiveAvgPool2DBackward0
    Case("adaptive_avg_pool2d_1x1", _aap((1, 1)), [T(2, 3, 5, 4)]),
    Case("adaptive_avg_pool2d_1", _aap(1), [T(2, 3, 5, 4)]),
    Case("adaptive_avg_pool2d_uneven", _aap((3, 2)), [T(2, 3, 7, 5)]),
    Case("adaptive_avg_pool2d_none", _aap((None, 2)), [T(1, 2, 4, 5)]),
    Case("adaptive_avg_pool2d_up", _aap(5), [T(1, 2, 3, 4)]),
    Case("adaptive_avg_pool2d_unbatched", _aap((4, 3)), [T(2, 6, 6)]),
    Case("adaptive_avg_pool2d_unbatched_1", _aap(1), [T(2, 6, 6)]),
    # batch_norm: training (batch statistics) and eval (running statistics)
    Case("batch_norm_train", _bn(training=True), [T(4, 3, 3, 3), C3, V3, W3, B3]),
    Case("batch_norm_train_plain", _bn(training=True), [T(4, 3, 3, 3), C3, V3]),
    Case("batch_norm_train_2d", _bn(training=True, momentum=0.3), [T(5, 3), C3, V3, W3, B3]),
    Case("batch_norm_train_3d", _bn(training=True, eps=1e-3), [T(2, 3, 4), C3, V3, W3, B3]),
    Case("batch_norm_train_no_stats", lambda m, x, w, b: F(m).batch_norm(
        x, None, None, w, b, training=True), [T(4, 3, 2, 2), W3, B3]),
    Case("batch_norm_train_weight_only", _bn(training=True), [T(3, 3, 2, 2), C3, V3, W3]),
    Case("batch_norm_train_frozen_x", _bn(training=True),
         [T(4, 3, 3, 3, grad=False), C3, V3, W3, B3]),
    Case("batch_norm_eval", _bn(), [T(4, 3, 3, 3), C3, V3, W3, B3]),
    Case("batch_norm_eval_plain", _bn(training=False), [T(4, 3, 3, 3), C3, V3]),
    Case("batch_norm_eval_2d", _bn(eps=1e-2), [T(5, 3), C3, V3, W3, B3]),
    # a ResNet stem, end to end: conv -> batch norm -> relu -> max pool -> adaptive pool
    Case("resnet_stem", lambda m, x, w, rm, rv, g, b: F(m).adaptive_avg_pool2d(
        F(m).max_pool2d(F(m).relu(F(m).batch_norm(
            F(m).conv2d(x, w, stride=2, padding=3), rm, rv, g, b, training=True)), 3, 2, 1), 1),
         [T(2, 3, 16, 16, grad=False), T(3, 3, 7, 7), C3, V3, W3, B3]),
]  # fmt: skip

# Double backward: torch records one ConvolutionBackwardBackward0 node with two outputs where
# we record one op per gradient, so graphs are not compared; values and gradients are.
# (Batch norm's outputs are cubed: the gradient of sum(y**2) is a float32 cancellation.)
GG = dict(check_graph=False)
CASES += [
    Case("conv2d_grad_grad", _gg(_conv(stride=2, padding=1)),
         [T(2, 2, 5, 5), T(3, 2, 3, 3), T(3)], **GG),
    Case("conv2d_grad_grad_s1_groups", _gg(_conv(padding=1, groups=2, dilation=(1, 2))),
         [T(2, 4, 5, 6), T(4, 2, 3, 2)], **GG),
    Case("max_pool2d_grad_grad", _gg(_mp(3, 2, 1)), [T(2, 2, 6, 6, domain="distinct")], **GG),
    Case("max_pool2d_grad_grad_disjoint", _gg(_mp(2)), [T(1, 2, 4, 6, domain="distinct")],
         **GG),
    Case("avg_pool2d_grad_grad", _gg(_ap(3, 2, 1, ceil_mode=True, count_include_pad=False)),
         [T(2, 2, 6, 6)], **GG),
    Case("adaptive_avg_pool2d_grad_grad", _gg(_aap((3, 2))), [T(2, 2, 7, 5)], **GG),
    Case("batch_norm_train_grad_grad", _gg(_bn(training=True), 3),
         [T(4, 3, 2, 2), C3, V3, W3, B3], **GG),
    Case("batch_norm_eval_grad_grad", _gg(_bn(), 3), [T(4, 3, 2, 2), C3, V3, W3, B3], **GG),
]  # fmt: skip
