"""Small helpers shared by the functional layers."""


def _pair(value):
    """(a, b) from an int or a pair of ints: torch's convention for kernel_size, stride and padding."""
    if isinstance(value, (tuple, list)):
        first, second = value
        return int(first), int(second)
    return int(value), int(value)


def _window_slices(i, j, out_size, stride):
    """Row and column slices of a padded input that pick, for kernel offset (i, j), one pixel per output window."""
    (ho, wo), (sh, sw) = out_size, _pair(stride)
    return slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)
