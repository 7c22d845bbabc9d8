"""Errors of the quality gates."""


class SuiteError(Exception):
    """A suite file is wrong; the message names the file and the expectation."""


class GateFailed(Exception):
    """A gate found blocking (`critical`) failures; the message lists each of them."""

    def __init__(self, gate: str, failures: list[str], context: str = "") -> None:
        self.gate, self.failures, self.context = gate, failures, context
        where = f" ({context})" if context else ""
        super().__init__(
            f"{gate} gate failed{where}: {len(failures)} expectation(s) not met: "
            + "; ".join(failures)
        )
