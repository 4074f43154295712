"""`caseconf-portfolio`: the managers' portfolio report, on a schedule and on demand."""

from datetime import datetime

from prefect import flow

from tasks.portfolio import publish_portfolio


@flow(name="caseconf-portfolio")
def portfolio_report(at: datetime | None = None) -> list[str]:
    """Publish the portfolio artifacts (`caseconf-portfolio`, `-waiting`, `-reviews`, `-actions`,
    `-delivery`, `-continuity`, `-quarter`) as of `at`, default now."""
    return publish_portfolio(at)
