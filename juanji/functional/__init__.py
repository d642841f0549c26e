"""Pure numeric kernels: arrays in, arrays out, no state. The maths of every layer lives here; threads and
scratch memory come from ``juanji.runtime``."""
from .activation import (leaky_relu, leaky_relu_backward, log_softmax, relu, relu_backward, sigmoid,
                         sigmoid_backward, softmax, softmax_backward, tanh, tanh_backward)
from .conv import (col2im, conv2d, conv2d_backward, conv2d_backward_reference, conv2d_input_grad,
                   conv2d_reference, conv2d_weight_grad, im2col)
from .geometry import conv_output_size, output_size, pool_output_size, resolve_padding
from .loss import cross_entropy, cross_entropy_backward
from .norm import batch_norm, batch_norm_backward
from .pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward,
                   avg_pool2d_backward_reference, max_pool2d, max_pool2d_backward, max_pool2d_backward_reference,
                   max_pool2d_reference)
from .sample_norm import group_norm, instance_norm, layer_norm, normalization_backward
