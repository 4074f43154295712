"""Settings from the environment (prefix `CASECONF_`) or a `.env` file."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASECONF_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'caseconf.db'}",
        description="SQLAlchemy URL of caseconf's own database (the system of record).",
    )
    directory: Path = Field(
        default=PROJECT_ROOT / "config" / "directory.demo.yaml",
        description="YAML file of the agencies, their representatives and kinds.",
    )
    profiles_dir: Path = Field(
        default=PROJECT_ROOT / "config" / "profiles",
        description="Folder of governance profiles, one YAML file per jurisdiction.",
    )
    profile: str = Field(
        default="generic", description="The governance profile new cases follow by default."
    )
    apprise_config: Path = Field(
        default=PROJECT_ROOT / "config" / "apprise.demo.yaml",
        description="Apprise YAML config: the channels' URLs, tagged by the directory's tags. "
        "Real URLs carry secrets: keep that file outside the repository.",
    )
    mail_from: str = Field(
        default="caseconf@demo.invalid", description="Organizer address of calendar invitations."
    )
    mail_catcher_port: int = Field(
        default=2525, description="Port of the local SMTP catcher `make run` starts."
    )
    reminder_hours: int = Field(
        default=48, ge=1, description="How long before a conference its reminder goes out."
    )
    due_soon_days: int = Field(
        default=7, ge=1, description="How long before an action's due date its owner is reminded."
    )
    conference_minutes: int = Field(
        default=120, ge=15, description="Length of a conference in calendar invitations."
    )
    delivery_retries: int = Field(
        default=3, ge=0, description="Retries of a message that could not be delivered."
    )
    delivery_retry_delay: float = Field(
        default=10.0, ge=0, description="Seconds before the first retry; doubled each time."
    )
    sweep_minutes: int = Field(
        default=10, ge=1, description="How often the notifications sweep runs (minutes)."
    )
    serve_limit: int = Field(
        default=8, ge=1, description="How many case runs the serving process runs at once."
    )
    warm_start: bool = Field(
        default=True,
        description="Start each flow run by forking a process that has Prefect and caseconf "
        "imported, instead of a fresh one that imports them again (about 3 s of CPU).",
    )
    free_text_place: bool = Field(
        default=False,
        description="Let coordinators type a conference's place instead of choosing one of the "
        "directory's venues. The place travels in every invitation and hand-over request.",
    )
    reference_prefix: str = Field(
        default="CASE", description="Prefix of the pseudonymous case references caseconf issues."
    )
    portfolio_minutes: int = Field(
        default=60, ge=1, description="How often the managers' portfolio report runs (minutes)."
    )
    manager_port: int = Field(
        default=4201, ge=1, le=65535, description="Port of the managers' read-only gateway."
    )
    late_after_days: dict[str, int] = Field(
        default={},
        description="Days a case may wait for a person at each step before the portfolio report "
        "counts it late (JSON; a step left out is never late). Empty: each step's own figure "
        "(preparation 7, consent 7, stakeholders 3, information 14, family_only 14, decision 7) "
        "and review_cancelled 7.",
    )
    step_modules: list[str] = Field(
        default=[],
        description="An installation's own human steps: Python modules that each register a "
        'step when imported (JSON, e.g. `["my_region.steps.risk_review"]`; '
        "models/steps/registry.py). A profile may then list their phases.",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
