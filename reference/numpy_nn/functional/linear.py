"""Fully connected layer y = x W^T + b (torch's weight layout) and flattening to (N, features)."""


def linear_forward(x, weight, bias):
    """x (N, in_features), weight (out_features, in_features), bias (out_features,) or None -> (N, out_features)."""
    out = x @ weight.T
    if bias is not None:
        out = out + bias
    return out, (x, weight, bias is not None)


def linear_backward(grad_out, cache):
    """grad_out (N, out_features) -> (grad_x, grad_weight, grad_bias or None)."""
    x, weight, has_bias = cache
    grad_bias = grad_out.sum(axis=0) if has_bias else None
    return grad_out @ weight, grad_out.T @ x, grad_bias


def flatten_forward(x):
    """(N, C, H, W) -> (N, C*H*W), keeping the batch axis (as torch.nn.Flatten)."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(grad_out, cache):
    """Restore the gradient to the input's shape."""
    return grad_out.reshape(cache)
