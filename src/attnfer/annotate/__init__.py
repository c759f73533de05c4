"""The clip labelling tool of paper 004 (``attnfer annotate``)."""
