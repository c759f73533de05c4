"""``python -m attnfer``: the command line."""

from .cli import run

run()
