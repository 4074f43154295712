"""Settings from the environment (prefix `CASECONF_`) or a `.env` file."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    serve_limit: int = Field(
        default=8, ge=1, description="How many case runs the serving process runs at once."
    )
    reference_prefix: str = Field(
        default="CASE", description="Prefix of the pseudonymous case references caseconf issues."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
