"""The suite's one finite-difference check of a backward (float64, central differences, no torch)."""
import numpy as np


def check_gradients(model, x, outputs, cotangents, backward, samples=6, params=None, h=1e-7, seed=0):
    """Compare backward's dL/dx and dL/dparam with central differences of L = Σ cotangent · output
    at a few random coordinates of x and of every parameter (or of the parameters named in ``params``).
    The small step keeps ReLU kinks and max-pool ties out of reach of the differences."""
    def loss():
        return sum((o * c).sum() for o, c in zip(outputs(x), cotangents))

    outputs(x)
    dx = backward()
    rng = np.random.default_rng(seed)
    targets = [("x", x, dx)] + [(name, p, g.copy()) for name, p, g in model.parameters()
                                if params is None or name in params]
    for name, array, grad in targets:
        for _ in range(samples if name == "x" else 2):
            index = tuple(rng.integers(s) for s in array.shape)
            saved = array[index]
            array[index] = saved + h
            up = loss()
            array[index] = saved - h
            down = loss()
            array[index] = saved
            numeric = (up - down) / (2 * h)
            assert abs(numeric - grad[index]) <= 1e-5 * max(1.0, abs(numeric)), (name, index, numeric, grad[index])


def check_layer(module, x, samples=6, h=1e-7, seed=0):
    """``check_gradients`` for one float64 layer and one input: L = Σ dY · module(x) with a random dY."""
    dy = np.random.default_rng(seed + 1).standard_normal(np.shape(module(x)))
    check_gradients(module, x, lambda x: [module(x)], [dy], lambda: module.backward(dy), samples=samples, h=h,
                    seed=seed)
