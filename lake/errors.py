"""Errors raised by the storage layer."""


class LakeError(Exception):
    """A problem with the lake: where it is, how to reach it, or what is in it."""


class LakeConfigError(LakeError):
    """The lake URL or the S3 settings are not usable."""


class InvalidName(LakeError, ValueError):
    """A name from the outside world (source, table, file) cannot become part of a key."""
