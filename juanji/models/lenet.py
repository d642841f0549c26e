"""LeNet-5: the modern variant (ReLU, max pooling) and LeCun et al. 1998's classic (tanh, average pooling).

28×28 input: conv 6@5×5 pad 2 → 28×28 → pool → 14×14 → conv 16@5×5 → 10×10 → pool → 5×5 → FC 120 → 84 → classes.
"""
from .. import nn


def _lenet(activation, pool, num_classes: int, in_channels: int, input_size: int) -> nn.Sequential:
    features = [nn.Conv2d(in_channels, 6, 5, padding=2), activation(), pool(2),
                nn.Conv2d(6, 16, 5), activation(), pool(2)]
    shape = (1, in_channels, input_size, input_size)
    for layer in features:
        if hasattr(layer, "output_shape"):      # the convolutions and poolings; activations keep the shape
            shape = layer.output_shape(shape)
    side = shape[-1]
    if side < 1:
        raise ValueError(f"LeNet-5 needs inputs of at least 12×12 pixels, got {input_size}")
    model = nn.Sequential(
        *features,
        nn.Flatten(),
        nn.Linear(16 * side * side, 120), activation(),
        nn.Linear(120, 84), activation(),
        nn.Linear(84, num_classes),
    )
    model.input_shape = (in_channels, input_size, input_size)
    return model


def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> nn.Sequential:
    """LeNet-5 as trained today: ReLU and max pooling."""
    return _lenet(nn.ReLU, nn.MaxPool2d, num_classes, in_channels, input_size)


def lenet5_classic(num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> nn.Sequential:
    """LeNet-5 as in LeCun et al. 1998: tanh and average pooling (full C3 connections, softmax output)."""
    return _lenet(nn.Tanh, nn.AvgPool2d, num_classes, in_channels, input_size)
