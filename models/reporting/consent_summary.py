"""The client's one-page summary: what is shared with whom under their consent.

The paper: "full transparency with the inmate on what information CSOs are obliged to share".
Written for the client in plain words; it names agencies, never people, and never repeats the
content of an information item.
"""

from datetime import date

from sqlmodel import Session, select

from models.config.profile import load_profile
from models.record.database import saved_id
from models.record.tables import Agency, Case
from models.rules.cases import current_conference
from models.rules.conference import audience, participants
from models.rules.consent import consent_in_force, ledger
from models.vocabulary import PROFESSIONAL_ROLES, Classification, ConferenceType, Role

WHAT = {
    Classification.shared: "what may also be shared with you and your family",
    Classification.professional: "what only the professionals of the conference may read",
    Classification.restricted: "where security information is kept (never the information itself)",
}


def consent_summary(session: Session, *, case: Case, today: date) -> str:
    """A one-page Markdown summary for the client of `case`, as things stand `today`."""
    assert case.id is not None
    lines = [
        f"# What is shared about you, and with whom ({case.reference})",
        "",
        f"As of {today.isoformat()}. You may ask for this page at any time, and you may withdraw "
        "your consent at any time without giving a reason.",
        "",
        "## Your consent",
        "",
    ]
    records = ledger(session, case_id=case.id)
    if not records:
        lines.append("- You have not been asked for consent (none is needed for this case so far).")
    for record in records:
        until = f", until {record.expires_on.isoformat()}" if record.expires_on else ""
        lines.append(
            f"- {record.recorded_at.date().isoformat()}: {record.scope.replace('_', ' ')}: "
            f"{record.decision}{until}"
        )
    scopes = sorted({r.scope for r in records})
    for scope in scopes:
        state = (
            "in force"
            if consent_in_force(session, case_id=case.id, scope=scope, today=today)
            else "not in force"
        )
        lines.append(f"- Today, {scope.replace('_', ' ')} is **{state}**.")
    lines += ["", "## Who takes part, and what each may receive", ""]
    conference = current_conference(session, case=case)
    if conference is None:
        lines.append("- No conference has been prepared yet.")
    else:
        agencies = {a.id: a for a in session.exec(select(Agency))}
        profile = load_profile(case.profile)
        for p in participants(session, conference_id=saved_id(conference)):
            if p.role not in PROFESSIONAL_ROLES:
                continue
            agency = agencies[p.agency_id]
            allowed = audience(
                role=Role(p.role),
                conference_type=ConferenceType(conference.conference_type),
                profile=profile,
                kinds=agency.kinds,
                agency_clearance=Classification(agency.clearance),
            )
            kinds = "; ".join(WHAT[c] for c in sorted(allowed, key=list(Classification).index))
            lines.append(f"- **{agency.name}** ({p.role}): {kinds}.")
        lines.append(
            "- **You and your family** receive only what is marked as shared with you."
            if conference.conference_type == ConferenceType.social_network
            else "- You and your family do not take part in this kind of conference."
        )
    return "\n".join(lines) + "\n"
