"""Errors attnfer raises for bad input: each names the file or setting and the problem."""


class AttnferError(Exception):
    """Base class; the command line prints these as one clear line and exits with code 2."""


class DataError(AttnferError):
    """A data file or folder that cannot be read as asked."""


class ConfigError(AttnferError):
    """A bad recipe, option or setting."""


class ModelError(AttnferError):
    """An unknown model name or a checkpoint that does not fit."""
