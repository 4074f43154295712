"""Test-only crash injection: a case's flow-run process kills itself at a chosen task boundary.

Why this way: production code stays as it is. This module is found only when the serving
process is started with `tests/faults` on PYTHONPATH (the harness does that); every flow-run
process the runner starts inherits that environment and so this hook (a run forked from serve's
forkserver inherits it from the forkserver, which imported it at its own start). It wraps
`prefect.task_engine.run_task_sync`, through which every task run passes: tasks a flow calls,
and tasks it submits or maps (the timeline, the run labels, every message's delivery, each on
a thread of its own). In the case flows only, it:

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
    import threading
    from pathlib import Path

    try:
        import prefect.task_engine as engine
    except Exception:  # not a Prefect process after all
        return

    control = Path(folder)
    case_flows = {"case-lifecycle", "case-review"}
    original = engine.run_task_sync
    # Mapped tasks pass the same boundary on several threads at once: count one at a time.
    passing = threading.Lock()

    def boundary(point: str) -> None:
        try:
            from prefect.runtime import flow_run

            if flow_run.get_flow_name() not in case_flows:
                return
        except Exception:
            return
        with passing:
            _pass(point)

    def _pass(point: str) -> None:
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

    def run_task_sync(*args, **kwargs):  # type: ignore[no-untyped-def]
        task = kwargs["task"] if "task" in kwargs else args[0]
        boundary(f"before:{task.name}")
        result = original(*args, **kwargs)
        boundary(f"after:{task.name}")
        return result

    # Prefect looks it up on the module at each call (run_task, the task runners' submit).
    engine.run_task_sync = run_task_sync


_install()
