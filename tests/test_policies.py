"""The cache policies behind replay safety, on a real Prefect server."""

from prefect import flow, task

from tasks.policies import CHECK, EFFECT


def test_effects_are_cached_per_task_and_run_and_checks_never(prefect_server):
    calls: list[str] = []

    # Same parameter names and values, as invite() and release_decision() have.
    @task(cache_policy=EFFECT, persist_result=True)
    def invite(case_id: int, conference_id: int) -> str:
        calls.append("invite")
        return "invitations"

    @task(cache_policy=EFFECT, persist_result=True)
    def release(case_id: int, conference_id: int) -> str:
        calls.append("release")
        return "minutes"

    @task(cache_policy=CHECK, persist_result=False)
    def check(case_id: int) -> int:
        calls.append("check")
        return len(calls)

    @flow(persist_result=True)
    def cycle() -> tuple[str, str, str, int, int]:
        return invite(1, 1), release(1, 1), invite(1, 1), check(1), check(1)

    assert cycle() == ("invitations", "minutes", "invitations", 3, 4)
    assert calls == ["invite", "release", "check", "check"]
    calls.clear()
    # A new run is a new cache scope: its effects run again (the database ledger stops repeats).
    cycle()
    assert calls.count("invite") == 1 and calls.count("release") == 1
