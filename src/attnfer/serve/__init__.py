"""The recognition server (``attnfer serve``)."""
