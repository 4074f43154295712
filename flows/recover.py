"""`case-recover` (production only): triggered by a crashed case run, it brings back the cases a
dead worker cut off and brings the record in line with runs cancelled outside caseconf."""

from prefect import flow, get_run_logger

from tasks.housekeeping import reconcile_reviews, recover_cases


@flow(name="case-recover", persist_result=False)
def case_recover() -> list[str]:
    """Bring back cases whose run crashed (or was cut off by a stop) as new runs of their cycle,
    and bring the record in line with runs cancelled outside caseconf."""
    logger = get_run_logger()
    recovered = recover_cases()
    logger.info("Brought back %d case(s): %s", len(recovered), ", ".join(recovered) or "none")
    reconciled = reconcile_reviews()
    logger.info("Brought in line with runs cancelled outside caseconf: %s", reconciled)
    return recovered
