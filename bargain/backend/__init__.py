"""Model transport: LiteLLM calls with limits, retries, cost, budgets, an exact replay cache and
self-hosted servers.

Modules: ``core`` (the Backend and ``classify``, the retry policy; the only module importing
LiteLLM), ``limits`` (per-endpoint concurrency and rpm/tpm), ``cache`` (replay cache), ``budget``
(caps and the spend journal), ``servers`` (start/stop self-hosted model servers), ``progress`` (the
job's progress bar).
"""

from bargain.backend.budget import BudgetExceeded
from bargain.backend.core import (
    SIM_PROVIDER,
    Backend,
    Completion,
    Failure,
    FatalBackendError,
    MissingKeyError,
    ModelCallError,
    call_seed,
    classify,
)

__all__ = [
    "SIM_PROVIDER",
    "Backend",
    "BudgetExceeded",
    "Completion",
    "Failure",
    "FatalBackendError",
    "MissingKeyError",
    "ModelCallError",
    "call_seed",
    "classify",
]
