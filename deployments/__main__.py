"""Operator commands: `python -m deployments migrate | load | serve | recover | resend |
move-to-workers | consent-summary <reference> | continuity <reference>`."""

import argparse
import sys
from datetime import UTC, datetime, timedelta

from deployments.configuration import load
from deployments.pool_move import main as move_to_workers
from deployments.serve import main as serve
from models.config.settings import get_settings
from models.errors import Refusal
from models.messaging.channels import (
    Transport,
)
from models.messaging.sending import requeue_failed, send_now
from models.record.audit import audit
from models.record.database import migrate, saved_id, session_scope
from models.reporting.consent_summary import consent_summary
from models.reporting.continuity import continuity, continuity_table
from models.rules.cases import acting_representative, case_by_reference
from tasks.housekeeping import reconcile_reviews, recover_cases
from tasks.prefect_compat import PrefectInternalsChanged


def resend() -> int:
    """Queue every failed message again and send each once, concurrently."""
    settings = get_settings()
    with session_scope() as session:
        ids = requeue_failed(session)
    sent = send_now(
        ids,
        transport=Transport(settings.apprise_config),
        mail_from=settings.mail_from,
        duration=timedelta(minutes=settings.conference_minutes),
        now=datetime.now(UTC),
    )
    print(f"caseconf: re-sent {sent} of {len(ids)} failed message(s)")
    return 0 if sent == len(ids) else 1


def print_consent_summary(reference: str, representative: str, reason: str) -> int:
    """Print the summary for the client; the export is recorded in the audit log with its reason."""
    now = datetime.now(UTC)
    try:
        with session_scope() as session:
            rep = acting_representative(session, code=representative, field="--representative")
            case = case_by_reference(session, reference)
            if not reason.strip():
                raise Refusal.of("--reason", "say why the summary is exported")
            text = consent_summary(session, case=case, today=now.date())
            audit(
                session,
                action="consent.summary.exported",
                case_id=case.id,
                actor_id=rep.id,
                at=now,
                justification=reason.strip(),
            )
    except Refusal as refusal:
        print(f"caseconf: refused: {refusal}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


def print_continuity(reference: str) -> int:
    """Print per agency how often the same person attended this case's conferences."""
    try:
        with session_scope() as session:
            case = case_by_reference(session, reference)
            text = continuity_table(case.reference, continuity(session, saved_id(case)))
    except Refusal as refusal:
        print(f"caseconf: refused: {refusal}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


def parser() -> argparse.ArgumentParser:
    """The operator commands and their arguments (README.md lists each)."""
    parser = argparse.ArgumentParser(prog="python -m deployments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database to the newest schema (Alembic)")
    sub.add_parser("load", help="validate the profiles and load the agency directory")
    sub.add_parser("serve", help="serve every deployment from one process")
    sub.add_parser(
        "recover",
        help="bring back open cases a stop cut off mid-step, and bring the record in line with "
        "runs cancelled outside caseconf",
    )
    sub.add_parser("resend", help="send again every message that failed, once each")
    sub.add_parser(
        "move-to-workers",
        help="after serve is stopped and the pool's deployments registered: replace every run "
        "that waits under serve by one on the caseconf work pool (docs/operations.md)",
    )
    summary = sub.add_parser(
        "consent-summary", help="print the client's one-page summary of what is shared with whom"
    )
    summary.add_argument("case_reference")
    summary.add_argument("--representative", required=True, help="your directory code")
    summary.add_argument("--reason", required=True, help="why it is exported (audited)")
    report = sub.add_parser(
        "continuity", help="per agency, how often the same person attended a case's conferences"
    )
    report.add_argument("case_reference")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "migrate":
        migrate()
        print("caseconf: database at the newest revision")
        return 0
    if args.command == "load":
        return load()
    if args.command == "consent-summary":
        return print_consent_summary(args.case_reference, args.representative, args.reason)
    if args.command == "continuity":
        return print_continuity(args.case_reference)
    if args.command == "resend":
        return resend()
    if args.command == "move-to-workers":
        return move_to_workers()
    if args.command == "recover":
        print(f"caseconf: brought back {recover_cases()}")
        print(
            f"caseconf: brought in line with runs cancelled outside caseconf: {reconcile_reviews()}"
        )
        return 0
    serve()
    return 0


def run(argv: list[str] | None = None) -> int:
    """`main`, with a Prefect caseconf was not checked against refused in one line."""
    try:
        return main(argv)
    except PrefectInternalsChanged as error:
        print(f"caseconf: refused: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
