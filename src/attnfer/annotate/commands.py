"""``attnfer annotate`` (placeholder being written)."""


def annotate() -> None:
    """Label clips in a browser."""
    raise NotImplementedError
