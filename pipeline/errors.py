"""Errors of the project config and of a pipeline run."""

from lake.redact import redact


class ConfigError(Exception):
    """lakehouse.yml is missing or wrong; the message names the file, the key and the fix."""


class StageFailed(Exception):
    """A pipeline stage failed; the message is the one-line reason the CLI prints."""

    def __init__(self, stage: str, reason: str) -> None:
        self.stage, self.reason = stage, redact(reason)
        super().__init__(f"{stage} failed: {self.reason}")
