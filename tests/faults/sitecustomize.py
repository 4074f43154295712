"""Test-only crash injection: a case's flow-run process kills itself at a chosen task boundary.

Why this way: production code stays as it is. This module is found only when the serving
process is started with `tests/faults` on PYTHONPATH (the harness does that); every flow-run
process the runner starts inherits that environment and so this hook. It wraps `Task.__call__`
(tasks a flow calls directly; `.map`/`.submit` are not wrapped) and, in the case flows only:

- appends each boundary it passes (`before:<task>` / `after:<task>`) to `$CASECONF_FAULTS_DIR/trace`;
- if `$CASECONF_FAULTS_DIR/crash_at` names this boundary (`after:prepare`, optionally `#n` for
  the n-th time it is passed in this walk), deletes that file (the crash happens once), writes
  `crashed`, and sends itself SIGKILL: no handler, no `finally`, no state change of its own,
  as a machine that dies. The runner sees the process die and marks the run Crashed.
  With `$CASECONF_FAULTS_DIR/kill_pid` present, the process named there (the Prefect server)
  is killed instead, and this run goes on without its API.
"""

import os


def _install() -> None:
    folder = os.environ.get("CASECONF_FAULTS_DIR")
    if not folder:
        return
    import signal
    from pathlib import Path

    try:
        from prefect.tasks import Task
    except Exception:  # not a Prefect process after all
        return

    control = Path(folder)
    case_flows = {"case-lifecycle", "case-review"}
    original = Task.__call__

    def boundary(point: str) -> None:
        try:
            from prefect.runtime import flow_run

            if flow_run.get_flow_name() not in case_flows:
                return
        except Exception:
            return
        trace = control / "trace"
        with open(trace, "a") as out:
            out.write(point + "\n")
        crash_at = control / "crash_at"
        if not crash_at.exists():
            return
        wanted, _, nth = crash_at.read_text().strip().partition("#")
        if wanted != point:
            return
        passed = trace.read_text().splitlines().count(point)
        if passed == int(nth or 1):
            crash_at.unlink()
            (control / "crashed").write_text(point)
            victim = control / "kill_pid"
            if victim.exists():
                pid = int(victim.read_text())
                victim.unlink()
                os.kill(pid, signal.SIGKILL)
                return
            os.kill(os.getpid(), signal.SIGKILL)

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        boundary(f"before:{self.name}")
        result = original(self, *args, **kwargs)
        boundary(f"after:{self.name}")
        return result

    Task.__call__ = __call__  # type: ignore[method-assign]


_install()
