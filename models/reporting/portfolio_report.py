"""The portfolio's Markdown artifacts: references, codes, dates and counts, nothing typed.

Prefect 3.9.1's v2 UI renders Markdown tables, mermaid blocks and `data:image/svg+xml` images
(its v1 UI shows neither picture, so every picture has a table of the same numbers under it).
"""

import base64
from collections.abc import Collection, Iterable
from datetime import datetime
from html import escape

from sqlmodel import Session

from models.reporting import portfolio as figures
from models.reporting.portfolio import (
    DIMENSIONS,
    AgencyActions,
    ContinuityRow,
    DeliveryRow,
    Portfolio,
    Quarter,
    ReviewReport,
    StageSnapshot,
    WaitingReport,
)
from models.vocabulary import Stage

#: The order and colours of stages in the picture.
STAGE_COLOURS = {
    str(Stage.pre_trial): "#7f7fd5",
    str(Stage.custody): "#d55e00",
    str(Stage.pre_release): "#e6a700",
    str(Stage.post_release): "#009e73",
}
UNKNOWN_COLOUR = "#999999"

#: Artifact key -> what it shows (the artifact's description in Prefect).
ARTIFACTS = {
    "caseconf-portfolio": "Open cases by stage, conference type, profile, area and lead agency",
    "caseconf-waiting": "Cases waiting for a person, oldest first",
    "caseconf-reviews": "Reviews in the next 30 days and overdue",
    "caseconf-actions": "Open and overdue actions by owner agency",
    "caseconf-delivery": "Failed and retried messages by agency and channel",
    "caseconf-continuity": (
        "Share of conferences attended by the same person, per agency (last 12 months)"
    ),
    "caseconf-quarter": "The quarter's figures",
}


def build_report(
    session: Session,
    *,
    now: datetime,
    known_profiles: Iterable[str],
    late_after_days: dict[str, int],
    waiting_phases: Collection[str] = figures.WAITING_PHASES,
) -> dict[str, str]:
    """Every portfolio artifact's Markdown by key, from the record as it is at `now` (cases
    waiting in `waiting_phases`)."""
    first, end = figures.quarter_of(now.date())
    previous = figures.quarter_of(figures.add_months(first, -3))
    quarters = figures.quarters(session, [previous, (first, end)])
    return {
        "caseconf-portfolio": portfolio_markdown(
            figures.portfolio(session, known_profiles=known_profiles),
            figures.stages_over_quarters(session, now=now),
            now=now,
        ),
        "caseconf-waiting": waiting_markdown(
            figures.waiting(
                session, now=now, late_after_days=late_after_days, phases=waiting_phases
            ),
            now=now,
        ),
        "caseconf-reviews": reviews_markdown(figures.reviews(session, now=now), now=now),
        "caseconf-actions": actions_markdown(figures.actions(session, today=now.date()), now=now),
        "caseconf-delivery": delivery_markdown(figures.delivery(session, now=now), now=now),
        "caseconf-continuity": continuity_markdown(figures.continuity(session, now=now), now=now),
        "caseconf-quarter": quarter_markdown(quarters, now=now),
    }


HEADINGS = {
    "stage": "Stage",
    "conference_type": "Conference type",
    "profile": "Profile",
    "area": "Area",
    "lead": "Lead agency",
}


def _stamp(now: datetime) -> str:
    return f"_As of {now.strftime('%Y-%m-%d %H:%M')} UTC._"


def _code(value: str) -> str:
    return f"`{value}`" if not value.startswith("(") else value


def _unplaced(lines: list[str]) -> list[str]:
    if not lines:
        return ["", "Every open case could be placed."]
    return ["", "**Could not place:**", "", *(f"- {line}" for line in lines)]


def portfolio_markdown(report: Portfolio, snapshots: list[StageSnapshot], *, now: datetime) -> str:
    lines = [f"# Open cases: {report.open_cases}", "", _stamp(now)]
    if report.open_cases == 0:
        lines += ["", "No open cases."]
    for dimension in DIMENSIONS:
        counts = report.by[dimension]
        if not counts:
            continue
        lines += ["", f"### By {HEADINGS[dimension].lower()}", ""]
        lines += [f"| {HEADINGS[dimension]} | Open cases |", "|---|---:|"]
        lines += [f"| {_code(k)} | {v} |" for k, v in sorted(counts.items())]
    lines += _unplaced(report.unplaced)
    lines += ["", *stages_over_time(snapshots)]
    return "\n".join(lines) + "\n"


def stages_over_time(snapshots: list[StageSnapshot]) -> list[str]:
    """The picture (a stacked bar per quarter end) and its numbers as a table."""
    stages = list(STAGE_COLOURS)
    lines = [
        "### Open cases by stage, end of each quarter",
        "",
        f"![Open cases by stage at the end of each quarter]({stage_chart(snapshots)})",
        "",
        "| At the end of | " + " | ".join(stages) + " | stage not known |",
        "|---|" + "---:|" * (len(stages) + 1),
    ]
    for snap in snapshots:
        cells = [str(snap.by_stage.get(s, 0)) for s in stages]
        lines.append(f"| {snap.label} | " + " | ".join(cells) + f" | {snap.unknown} |")
    if any(s.unknown for s in snapshots):
        lines += [
            "",
            "_Stage not known: cases closed since without any recorded move (their stage at "
            "that time was not kept)._",
        ]
    return lines


def stage_chart(snapshots: list[StageSnapshot]) -> str:
    """A stacked bar chart as an SVG data URI (no script, no external reference)."""
    width, height, left, bottom, top = 560, 260, 40, 30, 40
    bar = 60
    gap = (width - left - bar * max(len(snapshots), 1)) // max(len(snapshots), 1)
    highest = max((sum(s.by_stage.values()) + s.unknown for s in snapshots), default=0) or 1
    scale = (height - bottom - top) / highest
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="#333"/>',
    ]
    legend = [*STAGE_COLOURS.items(), ("not known", UNKNOWN_COLOUR)]
    for i, (name, colour) in enumerate(legend):
        x = left + i * 105
        parts.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="17">{escape(name)}</text>')
    for i, snap in enumerate(snapshots):
        x = left + gap // 2 + i * (bar + gap)
        y = float(height - bottom)
        values = [*((snap.by_stage.get(s, 0), c) for s, c in STAGE_COLOURS.items())]
        values.append((snap.unknown, UNKNOWN_COLOUR))
        for count, colour in values:
            if not count:
                continue
            h = count * scale
            y -= h
            parts.append(
                f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{h:.1f}" fill="{colour}"/>'
            )
        total = sum(snap.by_stage.values()) + snap.unknown
        parts.append(f'<text x="{x + bar / 2}" y="{y - 4:.1f}" text-anchor="middle">{total}</text>')
        parts.append(
            f'<text x="{x + bar / 2}" y="{height - bottom + 15}" text-anchor="middle">'
            f"{escape(snap.label)}</text>"
        )
    parts.append("</svg>")
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode()).decode()


def waiting_markdown(report: WaitingReport, *, now: datetime) -> str:
    lines = [f"# Waiting for a person: {report.total} case(s)", "", _stamp(now), ""]
    lines += [
        "Late: waiting longer than the days set per step (`CASECONF_LATE_AFTER_DAYS`).",
        "",
        "| Step | Waiting | Late | Late after (days) |",
        "|---|---:|---:|---:|",
    ]
    for step in sorted(set(report.by_step) | set(report.late_after_days)):
        n, late = report.by_step.get(step, (0, 0))
        limit = report.late_after_days.get(step)
        lines.append(f"| {step} | {n} | {late} | {limit if limit is not None else 'never'} |")
    lines += ["", "### Oldest first", ""]
    if not report.oldest:
        lines.append("No case waits for a person.")
    else:
        lines += [
            "| Case | Step | Waiting since | Days | Who acts | Late |",
            "|---|---|---|---:|---|---|",
        ]
        for w in report.oldest:
            days = (now - w.since).days
            lines.append(
                f"| {w.reference} | {w.step} | {w.since.strftime('%Y-%m-%d %H:%M')} | {days} "
                f"| `{w.who_acts}` | {'**late**' if w.late else ''} |"
            )
        more = report.total - len(report.oldest)
        if more > 0:
            lines += ["", f"_and {more} more._"]
    lines += [
        "",
        "_Waiting since: when the case reached this step (a transfer or a stage move does not "
        "reset it). Who acts: the agency coordinating the current conference, else the "
        "referring agency._",
    ]
    return "\n".join(lines) + "\n"


def reviews_markdown(report: ReviewReport, *, now: datetime) -> str:
    lines = [
        f"# Reviews: {report.upcoming} in the next 30 days, {report.overdue} overdue",
        "",
        _stamp(now),
    ]
    for title, total, rows in (
        ("Overdue", report.overdue, report.overdue_list),
        ("In the next 30 days", report.upcoming, report.upcoming_list),
    ):
        lines += ["", f"### {title}: {total}", ""]
        if not rows:
            lines.append("None.")
            continue
        lines += ["| Case | Review | Due |", "|---|---:|---|"]
        lines += [f"| {r.reference} | {r.cycle - 1} | {r.due_on.isoformat()} |" for r in rows]
        if total > len(rows):
            lines += ["", f"_and {total - len(rows)} more._"]
    if report.without_review:
        lines += [
            "",
            f"**{report.without_review} open case(s) have no review planned** (cancelled, none "
            "scheduled again).",
        ]
    lines += [
        "",
        "_Overdue: past its date and its run never started, or started and not decided yet._",
    ]
    return "\n".join(lines) + "\n"


def actions_markdown(rows: list[AgencyActions], *, now: datetime) -> str:
    total = sum(r.open for r in rows)
    overdue = sum(r.overdue for r in rows)
    lines = [f"# Open actions: {total}, overdue: {overdue}", "", _stamp(now), ""]
    if not rows:
        return "\n".join([*lines, "No open actions."]) + "\n"
    lines += ["| Owner agency | Open | Overdue |", "|---|---:|---:|"]
    lines += [f"| `{r.agency}` | {r.open} | {r.overdue} |" for r in rows]
    return "\n".join(lines) + "\n"


def delivery_markdown(rows: list[DeliveryRow], *, now: datetime) -> str:
    failed = sum(r.failed for r in rows)
    retried = sum(r.retried for r in rows)
    lines = [
        f"# Messages: {failed} failed, {retried} delivered after a retry",
        "",
        _stamp(now),
        "",
    ]
    if not rows:
        return "\n".join([*lines, "No failed or retried messages."]) + "\n"
    lines += ["| Agency | Channel | Failed | Retried (30 days) |", "|---|---|---:|---:|"]
    lines += [f"| `{r.agency}` | {r.channel} | {r.failed} | {r.retried} |" for r in rows]
    lines += [
        "",
        "_Failed: not delivered after every retry, until `python -m deployments resend`._",
    ]
    return "\n".join(lines) + "\n"


def continuity_markdown(rows: list[ContinuityRow], *, now: datetime) -> str:
    lines = ["# Personnel continuity per agency", "", _stamp(now), ""]
    if not rows:
        return "\n".join([*lines, "No conference participants recorded yet."]) + "\n"
    lines += [
        "Conferences prepared in the last 12 months. Same person: of the participations with a "
        "named representative, the share attended by the person who most often represents the "
        "agency in that case.",
        "",
        "| Agency | Participations | Named | Same person |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        share = "n/a" if r.share is None else f"{r.share:.0%}"
        lines.append(f"| `{r.agency}` | {r.conferences} | {r.named} | {share} |")
    return "\n".join(lines) + "\n"


def quarter_markdown(quarters: list[Quarter], *, now: datetime) -> str:
    """The figures of each quarter side by side (the current one is to date)."""
    head = " | ".join(q.label for q in quarters)
    lines = [f"# The quarter's figures: {quarters[-1].label}", "", _stamp(now), ""]
    lines += [f"| Figure | {head} |", "|---|" + "---:|" * len(quarters)]

    def row(name: str, cells: list[str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row("Referrals", [str(q.referrals) for q in quarters])
    row(
        "Repeat referrals (within 12 months of a closed case)",
        [str(q.repeat_referrals) for q in quarters],
    )
    types = sorted({t for q in quarters for t in q.conferences_held})
    row("Conferences held", [str(sum(q.conferences_held.values())) for q in quarters])
    for t in types:
        row(f"&nbsp;&nbsp;{t}", [str(q.conferences_held.get(t, 0)) for q in quarters])
    row("Consent refused", [str(q.consent.get("refused", 0)) for q in quarters])
    row("Consent withdrawn", [str(q.consent.get("withdrawn", 0)) for q in quarters])
    row(
        "Median days, referral to first conference",
        [
            "n/a"
            if q.median_days_to_first_conference is None
            else f"{q.median_days_to_first_conference:g} (of {q.first_conferences})"
            for q in quarters
        ],
    )
    row("Reviews held", [str(q.reviews_held) for q in quarters])
    row("&nbsp;&nbsp;on time", [str(q.reviews_on_time) for q in quarters])
    reasons = sorted({r for q in quarters for r in q.closures})
    row("Closures", [str(sum(q.closures.values())) for q in quarters])
    for r in reasons:
        row(f"&nbsp;&nbsp;{r}", [str(q.closures.get(r, 0)) for q in quarters])
    lines += [
        "",
        "_Held: the conference's decision was released in the quarter. Repeat: the referring "
        "agency's file number had a case closed in the 12 months before. On time: held on or "
        "before the review's due day._",
    ]
    return "\n".join(lines) + "\n"
