"""Business actions on searches, split by concern: creating and steering a search (``steering``), the
search step that asks the engine for new evaluations (``step``), and running one evaluation
(``evaluation``).

Idempotency: evaluations are claimed with conditional updates; a redelivered message for a finished
evaluation does nothing; a killed worker's evaluation is detected by its stale heartbeat and retried
as a new attempt (up to ``NASWEB_MAX_ATTEMPTS``). The engine reads a search's evaluations straight
from their rows (:mod:`searches.storage`), so nothing is told to it twice.
"""

from searches.services.evaluation import evaluation_dispatch, evaluation_log, evaluation_run
from searches.services.steering import (
    SearchValidationError,
    evaluation_retry,
    search_annotate,
    search_cancel,
    search_clone,
    search_clone_spec,
    search_create,
    search_delete,
    search_extend_budget,
    search_pause,
    search_resume,
    search_retry_failed,
)
from searches.services.step import search_step

__all__ = [
    "SearchValidationError",
    "evaluation_dispatch",
    "evaluation_log",
    "evaluation_retry",
    "evaluation_run",
    "search_annotate",
    "search_cancel",
    "search_clone",
    "search_clone_spec",
    "search_create",
    "search_delete",
    "search_extend_budget",
    "search_pause",
    "search_resume",
    "search_retry_failed",
    "search_step",
]
