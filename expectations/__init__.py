"""expectations: Great Expectations suites that gate raw batches and marts.

Public entry points: `load_suites` and `run_gate`. GX itself (~7.5 s to import) is only
imported when a gate runs.
"""

from expectations.errors import GateFailed, SuiteError
from expectations.gate import ExpectationResult, GateResult, run_gate
from expectations.suites import ExpectationSpec, SuiteSpec, load_suites

__all__ = [
    "ExpectationResult",
    "ExpectationSpec",
    "GateFailed",
    "GateResult",
    "SuiteError",
    "SuiteSpec",
    "load_suites",
    "run_gate",
]
