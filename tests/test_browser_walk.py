"""A coordinator walks cases in a real browser (Debian's Chromium, Playwright), as a person would:
the referral started from the deployment's Run page, every form answered through the run page's
Resume dialog by choosing from dropdowns, typing and adding list items, one answer refused on
purpose and its reason read on the form that asks again, until the review is scheduled.

Screenshots of every form go to a temporary folder; `make screenshots` writes them, each form
whole, to docs/screenshots/coordinator-*.png (looked at before they are committed). Skipped
loudly where Chromium is missing (tests/browser.py)."""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import StateType

from tests.browser import REFRESHING_DOCS, SCREENSHOTS, browser  # noqa: F401  (fixture)
from tests.prefect_harness import FINAL, Walk, wait_for

pytestmark = [
    pytest.mark.flow,
    pytest.mark.database,
]

AGENCY = "neustart-wien"  # the coordinator's own agency
REP = "neustart-wien-1"  # and their own representative code


#: A person's window while they fill in a form, and a page tall enough that a whole form fits in
#: the Resume dialog (80% of the page's height) for its screenshot. Chromium paints without a
#: GPU here: a page this tall all the time made each click on the larger forms take seconds.
WINDOW = {"width": 1280, "height": 1000}
#: A dialog is at most 80 % of the window high and scrolls inside: the stakeholders form, with
#: its representatives, needs about 5,200 px to be pictured whole.
TALL = {"width": 1280, "height": 8000}


@pytest.fixture
def tab(browser: Any) -> Any:  # noqa: F811
    # Reduced motion: the UI's sliding lists and dialogs settle at once (fewer clicks that wait
    # for an element to stop moving on a loaded machine).
    context = browser.new_context(viewport=WINDOW, reduced_motion="reduce")
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def field(scope: Any, label: str) -> Any:
    """The block of the form field labelled `label` (the innermost one, in list entries)."""
    return scope.locator(
        f"xpath=.//label[normalize-space()='{label}' or normalize-space()='{label} (Optional)']"
        "/ancestor::div[contains(@class, 'group')][1]"
    )


def choose(scope: Any, label: str, *options: str) -> None:
    """Pick `options` from the field's dropdown (several: a multi-select)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # optional: tests/browser.py

    block = field(scope, label).first
    button = block.locator("button[aria-haspopup=listbox]").first
    for option in options:
        if len(options) == 1 and button.inner_text().strip() == option:
            continue  # already chosen (pre-filled)
        listed = scope.page.get_by_role("option", name=option, exact=True)
        # A click that lands while the dialog is still being rendered opens no list (a loaded
        # CI run waited 30 s for one): click again, as a person would.
        for attempt in range(4):
            button.click()
            try:
                listed.wait_for(timeout=7_500)
                break
            except PlaywrightTimeout:
                if attempt == 3:
                    raise
                scope.page.keyboard.press("Escape")
        scope.page.wait_for_timeout(150)  # the list slides in; a moving option misses clicks
        listed.click()
        if button.get_attribute("aria-expanded") == "true":
            scope.page.keyboard.press("Escape")
    assert all(o in block.inner_text() for o in options), (label, block.inner_text())


def type_in(scope: Any, label: str, text: str) -> None:
    block = field(scope, label).first
    optional = block.get_by_role("tab", name="str", exact=True)
    if optional.count():  # an optional text shows a str / None toggle: None until chosen
        optional.first.click()
    block.locator("textarea, input").first.fill(text)


def add_item(scope: Any, label: str) -> Any:
    """Press the list's "Add item" and return the new entry's block, once it is there."""
    block = field(scope, label).first
    entries = block.locator("xpath=.//*[@aria-label='Drag to reorder']/..")
    # Not `.last`: until the new entry renders, that is the previous one, and the second of two
    # plan items overwrote the first (a CI run's family plan then had an empty item).
    added = entries.nth(entries.count())
    block.get_by_role("button", name="Add item").click()
    added.wait_for()
    return added


def press(tab: Any, button: Any, endpoint: str) -> Any:
    """Press `button` and return the response of the request to `endpoint` it sends. A 503 is
    Prefect's SQLite busy for a moment (its own client retries those; the UI shows a toast and
    keeps the form): press again, as the person would, for up to a minute (a CI run on a busy
    machine got four 503s in a row, 1.5 s apart)."""
    deadline = time.monotonic() + 60
    while True:
        with tab.expect_response(lambda r: r.url.endswith(endpoint)) as sent:
            button.click()
        if sent.value.status != 503 or time.monotonic() > deadline:
            return sent.value
        tab.wait_for_timeout(2000)


class Coordinator:
    """One person at the browser, walking one case."""

    def __init__(self, tab: Any, ui: str, shots: str) -> None:
        self.tab, self.ui, self.shots = tab, ui, shots
        self.walk: Walk | None = None

    def refer(self, stage: str) -> Walk:
        """Deployments -> case-lifecycle/referral -> Run -> Custom run, filled and submitted."""
        tab = self.tab
        tab.goto(f"{self.ui}/deployments")
        tab.get_by_role("link", name="referral", exact=True).first.click()
        tab.get_by_role("button", name="Run").first.click()
        tab.get_by_role("menuitem", name="Custom run").click()
        form = tab.locator("form").first
        choose(form, "Referring Agency", AGENCY)
        choose(form, "Stage", stage)
        self.shot("referral-run")
        created = press(tab, tab.get_by_role("button", name="Submit"), "/create_flow_run")
        assert created.ok, ("referral", created.status, created.text())
        self.walk = Walk(created.json()["id"])
        return self.walk

    def form(self, step: str, attempt: int = 0) -> Any:
        """The run page's "Open menu" -> "Resume": the dialog with the step's form."""
        assert self.walk is not None
        self.walk.waits_at(step, attempt)
        # The form is saved a moment after the run starts waiting, its schema first and its
        # description (with a refusal's reason) next: a dialog opened between the two has none.
        self.walk.schema()
        self.walk._form_input("description")
        tab = self.tab
        tab.goto(f"{self.ui}/runs/flow-run/{self.walk.run_id}")
        tab.get_by_role("button", name="Open menu").first.click()
        tab.get_by_role("menuitem", name="Resume").click()
        dialog = tab.get_by_role("dialog", name="Resume Flow Run")
        dialog.get_by_text("Resume Flow Run").wait_for()
        field(dialog, "Acting Representative").first.wait_for()
        return dialog

    def answer(
        self,
        step: str,
        name: str,
        fill: Callable[[Any], None] = lambda form: None,
        attempt: int = 0,
    ) -> None:
        """Open the step's form, `fill` it, sign it and press Resume. On a loaded machine the
        page sometimes re-renders under the person's hands and a click finds nothing still
        enough to land on for the whole timeout (CI runs, now and then): they open the form
        again and fill it anew, up to three times. Resume itself is pressed once."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout  # optional

        for tries in range(3):
            form = self.form(step, attempt)
            try:
                fill(form)
                choose(form, "Acting Representative", REP)
                break
            except PlaywrightTimeout:
                if tries == 2:
                    raise
                self.tab.goto("about:blank")
        self.resume(form, name)

    def resume(self, dialog: Any, name: str) -> None:
        """Screenshot the filled and signed form, press Resume."""
        self.shot(name, dialog)
        sent = press(self.tab, dialog.get_by_role("button", name="Resume", exact=True), "/resume")
        # Prefect answers a resume it refuses (an answer its schema rejects) with 2xx too.
        assert sent.ok and sent.json().get("status") == "ACCEPT", (name, sent.status, sent.text())
        dialog.wait_for(state="hidden")
        # Away from the run page while the step runs: it polls and repaints every few seconds,
        # which on 2 cores without a GPU slows the run it shows.
        self.tab.goto("about:blank")

    def shot(self, name: str, element: Any = None) -> None:
        """The page as the window shows it, as coordinator-*.png in SCREENSHOTS; when `make
        screenshots` refreshes the docs, the dialog with its whole form instead."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = str(SCREENSHOTS / f"coordinator-{self.shots}{name}.png")
        # Animations off: on a loaded machine a sliding dialog is never "stable" in time.
        if element is None or not REFRESHING_DOCS:
            self.tab.screenshot(path=path, animations="disabled", timeout=60_000)
            return
        # A whole form needs a page thousands of pixels tall, which Chromium paints without a
        # GPU here in seconds: only for the pictures the docs show.
        self.tab.set_viewport_size(TALL)
        try:
            element.screenshot(path=path, animations="disabled", timeout=60_000)
        finally:
            self.tab.set_viewport_size(WINDOW)


def review_scheduled(reference: str) -> bool:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case:{reference}"]))
        )
    return any(
        r.state is not None and r.state.type == StateType.SCHEDULED and "review" in r.name
        for r in runs
    )


def finish(walk: Walk) -> str:
    run = wait_for(walk.run_id, FINAL, timeout=120)
    assert run.state is not None and run.state.type == StateType.COMPLETED, run.state
    reference = next(t.split(":", 1)[1] for t in run.tags if t.startswith("case:"))
    assert review_scheduled(reference), reference
    return reference


def test_a_social_network_case_referred_and_its_stakeholders_chosen_in_the_browser(
    serving, prefect_server, tab
) -> None:
    """The social-network walk's first half, to the information form: its second half is the
    next test (two halves run side by side instead of one long walk)."""
    me = Coordinator(tab, prefect_server.api_url.removesuffix("/api") + "/v2", "")
    walk = me.refer("pre_release")

    def referral(form: Any) -> None:
        type_in(form, "File Number", "BW-2026/17")
        choose(form, "Needs", "housing")

    me.answer("referral", "referral", referral)

    def preparation(form: Any) -> None:
        choose(form, "Conference Type", "social_network")
        choose(form, "Location", "neustart-wien-room-3")

    me.answer("preparation", "preparation", preparation)
    me.answer("consent", "consent", lambda form: choose(form, "Client Consent", "granted"))

    # Refused on purpose: an agency added without saying why.
    me.answer("stakeholders", "stakeholders-refused", lambda form: choose(form, "Add", "psd-wien"))

    def stakeholders(form: Any) -> None:
        # The description is rendered a moment after the dialog opens: wait for the reason.
        form.get_by_text("was not accepted").first.wait_for(timeout=30_000)
        assert "reason" in form.inner_text()
        me.shot("stakeholders-asked-again", form)
        choose(form, "Add", "psd-wien")
        type_in(form, "Reason", "Mental health support after release")

    me.answer("stakeholders", "stakeholders", stakeholders, attempt=1)
    walk.waits_at("information")


def social_network_case_at_information() -> Walk:
    """A social-network case answered through the API as the first half answers it in the
    browser, waiting at its information form."""
    walk = Walk.refer(AGENCY, stage="pre_release")
    walk.waits_at("referral")
    walk.answer(file_number="BW-2026/19", needs=["housing"], acting_representative=REP)
    walk.waits_at("preparation")
    walk.answer(
        conference_type="social_network",
        location="neustart-wien-room-3",
        acting_representative=REP,
    )
    walk.waits_at("consent")
    walk.answer(client_consent="granted", acting_representative=REP)
    walk.waits_at("stakeholders")
    walk.answer(
        add=["psd-wien"], reason="Mental health support after release", acting_representative=REP
    )
    walk.waits_at("information")
    return walk


def test_a_social_network_conference_held_in_the_browser(serving, prefect_server, tab) -> None:
    """The social-network walk's second half: a case brought to its information form with the
    answers the first half gives in the browser (sent as the UI sends them), then information,
    the family's plan and the decision on each plan item in the browser, to the review."""
    # In a thread of its own (with this one's Prefect settings): with the browser open,
    # Playwright keeps an event loop running in this one, where Prefect's sync calls would hand
    # back coroutines.
    with ThreadPoolExecutor(1) as other:
        walk = other.submit(copy_context().run, social_network_case_at_information).result()
    me = Coordinator(tab, prefect_server.api_url.removesuffix("/api") + "/v2", "")
    me.walk = walk

    def information(form: Any) -> None:
        entry = add_item(form, "Contributions")
        choose(entry, "Agency", AGENCY)
        choose(entry, "Classification", "shared")
        type_in(entry, "Summary", "Reports regularly; housing is the open question")

    me.answer("information", "information", information)

    def family_plan(form: Any) -> None:
        for item in ("Stay with the sister for the first weeks", "Apply for council housing"):
            add_item(form, "Plan Items").locator("textarea").fill(item)

    me.answer("family-only", "family-plan", family_plan)

    def decision(form: Any) -> None:
        entries = field(form, "Plan Decisions").first.locator(
            "xpath=.//*[@aria-label='Drag to reorder']/.."
        )
        assert entries.count() == 2
        for n in range(2):
            choose(entries.nth(n), "Outcome", "accepted")
            type_in(entries.nth(n), "Reason", "Agreed by everyone")

    me.answer("decision", "decision", decision)
    finish(walk)


def test_a_security_case_walked_in_the_browser(serving, prefect_server, tab) -> None:
    me = Coordinator(tab, prefect_server.api_url.removesuffix("/api") + "/v2", "security-")
    walk = me.refer("custody")

    me.answer("referral", "referral", lambda form: type_in(form, "File Number", "BW-2026/18"))

    def preparation(form: Any) -> None:
        choose(form, "Conference Type", "security")
        choose(form, "Location", "jva-wien-room-2")

    me.answer("preparation", "preparation", preparation)
    me.answer("stakeholders", "stakeholders")

    def information(form: Any) -> None:
        entry = add_item(form, "Contributions")
        choose(entry, "Agency", "dsn")
        choose(entry, "Classification", "restricted")
        type_in(entry, "Pointer", "dsn case file, section 3")

    me.answer("information", "information", information)

    # Refused on purpose: a security conference that decides nothing.
    me.answer("decision", "decision-refused")

    def decision(form: Any) -> None:
        # The description is rendered a moment after the dialog opens: wait for the reason.
        form.get_by_text("was not accepted").first.wait_for(timeout=30_000)
        assert "record at least one decision or action" in form.inner_text()
        me.shot("decision-asked-again", form)
        add_item(form, "Decisions").locator("textarea").fill(
            "Weekly reporting to the probation officer"
        )

    me.answer("decision", "decision", decision, attempt=1)
    finish(walk)
