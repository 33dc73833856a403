"""Model transport: LiteLLM calls with limits, retries, cost, budgets, an exact replay cache and
self-hosted servers.

Modules: ``core`` (the Backend; the only module importing LiteLLM), ``limits`` (per-endpoint
concurrency and rpm/tpm), ``cache`` (replay cache), ``budget`` (spend, caps, shared ledger),
``servers`` (start/stop self-hosted model servers), ``progress`` (the job's progress bar).
"""

from bargain.backend.budget import BudgetExceeded
from bargain.backend.core import (
    SIM_PROVIDER,
    Backend,
    Completion,
    FatalBackendError,
    MissingKeyError,
    ModelCallError,
    call_seed,
)

__all__ = [
    "SIM_PROVIDER",
    "Backend",
    "BudgetExceeded",
    "Completion",
    "FatalBackendError",
    "MissingKeyError",
    "ModelCallError",
    "call_seed",
]
