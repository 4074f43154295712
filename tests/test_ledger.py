"""The idempotency ledger and `apply_once`: an effect happens once, a refusal leaves nothing."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from models.errors import Problem, Refusal
from models.record import ledger
from models.record.database import session_scope
from models.record.tables import AuditEvent, Effect, FormRefusal
from tasks.policies import apply_once

pytestmark = pytest.mark.database

NOW = datetime(2035, 2, 1, 10, 0, tzinfo=UTC)


# --- models.record.ledger, in the rolled-back session ----------------------------------------------


def test_record_then_recorded_round_trip(session: Session) -> None:
    assert ledger.recorded(session, key="test/ledger/1") is None
    ledger.record(session, key="test/ledger/1", case_id=None, result={"ids": [1, 2], "n": 3})
    session.expunge_all()
    assert ledger.recorded(session, key="test/ledger/1") == {"ids": [1, 2], "n": 3}


def test_a_key_is_recorded_only_once(session: Session) -> None:
    ledger.record(session, key="test/ledger/2", case_id=None, result={"n": 1})
    session.expunge_all()  # as a second transaction would see it
    with pytest.raises(IntegrityError), session.begin_nested():
        ledger.record(session, key="test/ledger/2", case_id=None, result={"n": 2})
    assert ledger.recorded(session, key="test/ledger/2") == {"n": 1}


def test_record_refusal_is_idempotent_per_step_and_attempt(session: Session) -> None:
    key = "test/ledger/3"
    ledger.record_refusal(session, step_key=key, attempt=1, reason="first")
    ledger.record_refusal(session, step_key=key, attempt=1, reason="again")
    ledger.record_refusal(session, step_key=key, attempt=2, reason="second")
    rows = ledger.refusals(session, step_key=key)
    assert [(r.attempt, r.reason) for r in rows] == [(1, "first"), (2, "second")]


# --- tasks.policies.apply_once, committing its own transactions ------------------------------


@pytest.fixture
def step_key(database: str) -> Iterator[str]:
    """A fresh step key; its ledger rows and audit events are removed afterwards."""
    key = f"test/apply_once/{uuid.uuid4()}"
    yield key
    with session_scope(database) as session:
        session.exec(delete(Effect).where(col(Effect.key) == key))  # type: ignore[call-overload]
        session.exec(delete(FormRefusal).where(col(FormRefusal.step_key) == key))  # type: ignore[call-overload]
        # Audit events stay: the database refuses to delete them (append-only); they are keyed
        # by this test's own uuid, so they harm no other test.


def audit_rows(database: str, key: str) -> list[AuditEvent]:
    with session_scope(database) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.detail == key)))


def test_apply_once_writes_once_and_replays_the_result(database: str, step_key: str) -> None:
    calls: list[int] = []

    def write(session: Session) -> dict[str, Any]:
        calls.append(1)
        event = AuditEvent(action="test.apply_once", detail=step_key, at=NOW)
        session.add(event)
        session.flush()
        return {"audit_event_id": event.id}

    first = apply_once(step_key=step_key, case_id=None, attempt=1, write=write)
    second = apply_once(step_key=step_key, case_id=None, attempt=1, write=write)

    assert calls == [1]
    assert first.refusal is None and second.refusal is None
    rows = audit_rows(database, step_key)
    assert len(rows) == 1
    assert first.result == second.result == {"audit_event_id": rows[0].id}
    with session_scope(database) as session:
        assert ledger.recorded(session, key=step_key) == {"audit_event_id": rows[0].id}
        assert ledger.refusals(session, step_key=step_key) == []


def test_apply_once_refusal_rolls_back_and_is_recorded(database: str, step_key: str) -> None:
    def write(session: Session) -> dict[str, Any]:
        session.add(AuditEvent(action="test.apply_once", detail=step_key, at=NOW))
        session.flush()
        raise Refusal(Problem("answer", "does not fit"), Problem("other", "also wrong"))

    outcome = apply_once(step_key=step_key, case_id=None, attempt=1, write=write)
    again = apply_once(step_key=step_key, case_id=None, attempt=1, write=write)

    assert outcome.result is None
    assert outcome.refusal == "answer: does not fit; other: also wrong"
    assert again.refusal == outcome.refusal
    assert audit_rows(database, step_key) == []
    with session_scope(database) as session:
        assert ledger.recorded(session, key=step_key) is None
        refusals = ledger.refusals(session, step_key=step_key)
        assert [(r.attempt, r.reason) for r in refusals] == [(1, outcome.refusal)]


def test_apply_once_after_a_refusal_the_next_attempt_may_succeed(
    database: str, step_key: str
) -> None:
    answers = iter([Refusal.of("answer", "does not fit"), None])

    def write(session: Session) -> dict[str, Any]:
        problem = next(answers)
        if problem is not None:
            raise problem
        event = AuditEvent(action="test.apply_once", detail=step_key, at=NOW)
        session.add(event)
        session.flush()
        return {"audit_event_id": event.id}

    refused = apply_once(step_key=step_key, case_id=None, attempt=1, write=write)
    applied = apply_once(step_key=step_key, case_id=None, attempt=2, write=write)

    assert refused.refusal is not None and refused.result is None
    assert applied.refusal is None
    rows = audit_rows(database, step_key)
    assert applied.result == {"audit_event_id": rows[0].id}
    with session_scope(database) as session:
        assert [r.attempt for r in ledger.refusals(session, step_key=step_key)] == [1]


def test_apply_once_does_not_swallow_other_errors(database: str, step_key: str) -> None:
    def write(session: Session) -> dict[str, Any]:
        session.add(AuditEvent(action="test.apply_once", detail=step_key, at=NOW))
        session.flush()
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        apply_once(step_key=step_key, case_id=None, attempt=1, write=write)
    assert audit_rows(database, step_key) == []
    with session_scope(database) as session:
        assert ledger.recorded(session, key=step_key) is None
        assert ledger.refusals(session, step_key=step_key) == []


def test_steps_reads_results_refusals_and_forgotten_forms_at_once(session: Session) -> None:
    keys = {"test/ledger/s-preparation", "test/ledger/s-stakeholders", "test/ledger/s-decision"}
    ledger.record(session, key="test/ledger/s-preparation", case_id=None, result={"id": 7})
    ledger.record_forgotten(session, key="test/ledger/s-preparation")
    ledger.record_forgotten(session, key="test/ledger/s-preparation")  # once per step
    ledger.record_refusal(session, step_key="test/ledger/s-stakeholders", attempt=1, reason="b")
    ledger.record_refusal(session, step_key="test/ledger/s-stakeholders", attempt=0, reason="a")
    ledger.record(session, key="test/ledger/s-other", case_id=None, result={"id": 8})
    session.expunge_all()

    steps = ledger.steps(session, keys=keys)

    assert steps.answered == {"test/ledger/s-preparation": {"id": 7}}
    assert steps.refused == {"test/ledger/s-stakeholders": ["a", "b"]}
    assert steps.forgotten == {"test/ledger/s-preparation"}
    # The marker is a row of its own: the step's result stays the ids it wrote.
    assert ledger.recorded(session, key="test/ledger/s-preparation") == {"id": 7}


def test_a_replay_reads_the_ledger_once_and_again_after_a_write(
    database: str, step_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tasks.steps.ledger_read_once`: one read for every step it covers; `ledger_changed()`
    (what `ask()` calls after an apply or a refusal) makes the next look-up read again."""
    from tasks import steps as step_reads

    reads: list[frozenset[str]] = []
    real = ledger.steps

    def counted(session: Session, *, keys: Any) -> ledger.Steps:
        reads.append(frozenset(keys))
        return real(session, keys=keys)

    monkeypatch.setattr(ledger, "steps", counted)
    other = f"{step_key}-other"
    with step_reads.ledger_read_once([step_key, other]):
        assert step_reads.step_answered(step_key) is None
        assert step_reads.step_refusals(other) == []
        assert len(reads) == 1
        apply_once(step_key=step_key, case_id=None, attempt=0, write=lambda s: {"n": 1})
        assert step_reads.step_answered(step_key) is None  # the snapshot, until told
        step_reads.ledger_changed()
        assert step_reads.step_answered(step_key) == {"n": 1}
        assert len(reads) == 2
    assert step_reads.step_answered(step_key) == {"n": 1}  # outside: a read of its own
    assert reads[-1] == {step_key}
