"""Errors of the project config and of a pipeline run."""


class ConfigError(Exception):
    """lakehouse.yml is missing or wrong; the message names the file, the key and the fix."""


class StageFailed(Exception):
    """A pipeline stage failed; the message is the one-line reason the CLI prints."""

    def __init__(self, stage: str, reason: str) -> None:
        self.stage, self.reason = stage, reason
        super().__init__(f"{stage} failed: {reason}")
