"""``attnfer serve`` (placeholder being written)."""


def serve() -> None:
    """Serve the recognition API and demo page."""
    raise NotImplementedError
