"""The engine's storage contract on the web app's rows: a search's configuration is its ``SearchInstance``
row, its evaluations are its ``Evaluation`` rows. The engine keeps no copy of them.

Which rows the engine sees:

* history: finished attempts (done or failed) that were not replaced by a retry, in finishing order
  (``seq``); an evaluation cancelled with its search never finished and is not in it;
* pending: queued and running attempts.

A search step proposes outside any lock (fine-tuning and scoring take a while), so proposals and the
ask counter are buffered and written by :meth:`EvaluationRowStorage.commit` inside the step's locked
transaction, only if no other step asked meanwhile. Workers record results with
:meth:`EvaluationRowStorage.finish`, which also keeps the search's running figures (``finished_count``,
``spent``, ``best_value``) and each row's place in the curve (``seq``, ``spent_after``, ``best_after``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from searches.engine import SearchStorage
from searches.models import Evaluation, SearchInstance

#: Size of the initial design of web searches (the engine's default).
N_INITIAL = 10


class EvaluationRowStorage(SearchStorage):
    """A web search's evaluations as the engine sees them (loaded lazily, once per instance)."""

    def __init__(self, search: SearchInstance) -> None:
        self.search = search
        self._loaded = False
        self._history: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._new: list[dict[str, Any]] = []
        self._spent = 0.0
        self._asks_at_load = search.n_asks
        self._n_asks = search.n_asks

    # -- reading -------------------------------------------------------------------------------------
    def _flip(self, value: float | None) -> float | None:
        """A row's value as the engine sees it and back: the engine maximises, so a minimising search
        shows it negated values (and stores the engine's predictions negated back)."""
        return -value if value is not None and self.search.minimizes else value

    def _record(self, row: Evaluation) -> dict[str, Any]:
        finished = row.state in (Evaluation.State.DONE, Evaluation.State.FAILED)
        record: dict[str, Any] = {
            "id": row.id,
            "index": row.encoding_index,
            "fidelity": row.fidelity,
            "attempt": row.attempt,
            "ask": row.ask,
            "asked_at": row.queued_at.isoformat() if row.queued_at else None,
            "predicted_mean": self._flip(row.predicted_mean),
            "predicted_std": row.predicted_std,
            "reason": row.reason or None,
        }
        if finished:
            record.update(
                seq=row.seq,
                value=self._flip(row.value) if row.state == Evaluation.State.DONE else None,
                error=(row.error or "evaluation failed") if row.state == Evaluation.State.FAILED else None,
                cost=row.cost * self.search.hi_fi_cost,
                budget_units=row.cost,
                duration_s=row.duration_s,
                finished_at=row.finished_at.isoformat() if row.finished_at else None,
            )
            if row.objectives is not None:
                record["objectives"] = dict(row.objectives)
        return record

    def _load(self) -> None:
        if self._loaded:
            return
        rows = self.search.evaluations.all()
        self._history = [
            self._record(row) for row in rows.filter(
                state__in=(Evaluation.State.DONE, Evaluation.State.FAILED), retried=False, seq__isnull=False,
            ).order_by("seq")
        ]
        self._pending = [
            self._record(row)
            for row in rows.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING)).order_by("id")
        ]
        self._spent = float(SearchInstance.objects.only("spent").get(id=self.search.id).spent)
        self._loaded = True

    def load_config(self) -> dict[str, Any]:
        s = self.search
        return {
            "name": s.name,
            "created": s.created_at.isoformat() if s.created_at else None,
            "seed": s.seed,
            "acquisition": s.acquisition,
            "batch_size": s.parallelism,
            "n_initial": N_INITIAL,
            "hi_fi_cost": s.hi_fi_cost,
            "lo_fi_cost": s.lo_fi_cost,
            "budget": s.budget,
            # the surrogate's kind and the hardware-aware goals (nastune.objectives) are engine options
            "options": {"surrogate": s.surrogate, "objectives": {str(n): str(d) for n, d in s.objectives or []},
                        "constraints": list(s.constraints or []), "reference_point": dict(s.reference_point or {}),
                        "initial_candidates": [int(i) for i in s.initial_candidates or []]},
            "n_asks": self._n_asks,
        }

    def history(self) -> list[dict[str, Any]]:
        self._load()
        return self._history

    def pending(self) -> list[dict[str, Any]]:
        self._load()
        return self._pending

    # -- a search step's writes (buffered until commit) -------------------------------------------------
    def save_config(self, config: Mapping[str, Any]) -> None:
        # Everything else of the configuration is the row's own fields, changed only by services.
        self._n_asks = int(config.get("n_asks", self._n_asks))

    def create_pending(self, records: Sequence[Mapping[str, Any]]) -> None:
        self._load()
        for record in records:
            self._new.append(dict(record))
            self._pending.append(dict(record))

    def withdraw(self, index: int, fidelity: str) -> bool:
        match = next((r for r in self._new if r["index"] == int(index) and r["fidelity"] == fidelity), None)
        if match is None:
            return False  # a stored evaluation is withdrawn by failing it (cancel), not by forgetting it
        self._new.remove(match)
        self._pending[:] = [r for r in self._pending if r is not match and not (
            r["index"] == match["index"] and r["fidelity"] == match["fidelity"] and "id" not in r)]
        return True

    @property
    def proposals(self) -> list[dict[str, Any]]:
        """Proposals of this step not stored yet."""
        return list(self._new)

    def commit(self) -> list[Evaluation] | None:
        """Store this step's proposals and ask counter; call inside the step's transaction, with the search
        row locked. Returns the new evaluation rows, or ``None`` when another step asked meanwhile (the
        caller starts over). A proposal whose (candidate, fidelity) already has a row is skipped."""
        if self._n_asks != self._asks_at_load:
            updated = SearchInstance.objects.filter(id=self.search.id, n_asks=self._asks_at_load).update(
                n_asks=self._n_asks)
            if not updated:
                return None
        created = []
        for record in self._new:
            try:
                with transaction.atomic():
                    created.append(Evaluation.objects.create(
                        search_id=self.search.id, encoding_index=int(record["index"]), fidelity=record["fidelity"],
                        predicted_mean=self._flip(record.get("predicted_mean")),
                        predicted_std=record.get("predicted_std"), ask=record.get("ask"),
                        reason=record.get("reason") or "",
                    ))
            except IntegrityError:  # proposed while an older row of it exists: never run it twice
                continue
        self._new = []
        self._asks_at_load = self._n_asks
        return created

    # -- a worker's writes ---------------------------------------------------------------------------------
    def finish(self, record: Mapping[str, Any]) -> bool:  # type: ignore[override]
        """Record the result of the running evaluation ``record["id"]`` (or, without an id, the running
        attempt of ``index``/``fidelity``). Returns False when it is no longer running (cancelled, or taken
        over after its worker was presumed lost): such a result must not count."""
        failed = record.get("value") is None or record.get("error")
        rows = Evaluation.objects.filter(search_id=self.search.id, state=Evaluation.State.RUNNING)
        if record.get("id") is not None:
            rows = rows.filter(id=record["id"])
        else:
            rows = rows.filter(encoding_index=int(record["index"]), fidelity=record["fidelity"], retried=False)
        now = timezone.now()
        with transaction.atomic():
            row = rows.select_for_update().first()
            if row is None:
                return False
            fields: dict[str, Any] = {
                "state": Evaluation.State.FAILED if failed else Evaluation.State.DONE,
                "value": None if failed else float(record["value"]),
                "error": str(record.get("error") or "") if failed else "",
                "cost": float(record.get("budget_units", 0.0)),
                "finished_at": now,
                "duration_s": record.get("duration_s"),
                "heartbeat_at": now,
            }
            if "log_tail" in record:
                fields["log_tail"] = record["log_tail"]
            if record.get("objectives") is not None:
                fields["objectives"] = dict(record["objectives"])
            Evaluation.objects.filter(id=row.id).update(**fields)
            self.place_in_order(row.id)
        self._loaded = False
        return True

    def place_in_order(self, evaluation_id: int) -> None:
        """Give a finished evaluation its place in the search's order and the curve's running figures.

        Runs in the caller's transaction with the search row locked, so ``seq`` is gap-free.
        """
        search = SearchInstance.objects.select_for_update().get(id=self.search.id)
        evaluation = Evaluation.objects.get(id=evaluation_id)
        search.finished_count += 1
        search.spent += evaluation.cost
        if evaluation.state == Evaluation.State.DONE and evaluation.fidelity == Evaluation.Fidelity.HI and \
                evaluation.value is not None and search.better(evaluation.value, search.best_value) and \
                self._feasible(search, evaluation):
            search.best_value = evaluation.value
            search.best_index = evaluation.encoding_index
        Evaluation.objects.filter(id=evaluation.id).update(
            seq=search.finished_count, spent_after=search.spent, best_after=search.best_value)
        search.save(update_fields=["finished_count", "spent", "best_value", "best_index", "updated_at"])

    @staticmethod
    def _feasible(search: SearchInstance, evaluation: Evaluation) -> bool:
        """Whether a result meets the search's constraints (always, without any): only feasible results
        become the best (issue 15). Constraints on space metrics read the profile."""
        if not search.constraints:
            return True
        from searches.engine import Goals
        from spaces.services import load_profile

        profile = load_profile(search.space)[0]

        def lookup(name: str) -> tuple[Any, None, None]:
            column = profile.get(name)
            return column, None, None

        record = {"index": evaluation.encoding_index, "value": evaluation.value, "objectives": evaluation.objectives}
        return Goals(search.objectives, search.constraints).feasible(record, lookup)

    # -- indexed views -------------------------------------------------------------------------------------
    def spent(self) -> float:
        # Every finished attempt spent its cost, also one a retry replaced (it used the machine too):
        # the search's running figure, read once with the rows.
        self._load()
        return self._spent

    def incumbent(self, fidelity: str = "hi") -> dict[str, Any] | None:
        if fidelity != "hi" or self._loaded:
            return super().incumbent(fidelity)
        search = SearchInstance.objects.only("best_value", "best_index", "direction").get(id=self.search.id)
        if search.best_index is None or search.best_value is None:
            return None
        value = -search.best_value if search.minimizes else search.best_value  # the engine's (maximised) value
        return {"index": search.best_index, "fidelity": "hi", "value": value}
