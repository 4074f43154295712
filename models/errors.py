"""Business-rule refusals: each names the field and the reason, never the value typed."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class Refusal(Exception):
    """A form answer or command that breaks a business rule; nothing has been written."""

    def __init__(self, *problems: Problem) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in problems))

    @classmethod
    def of(cls, field: str, reason: str) -> "Refusal":
        return cls(Problem(field, reason))
