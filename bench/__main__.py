"""Run every bench: `python -m bench`."""

from bench import invitations


def main() -> None:
    """Run the benches one after the other and print their reports."""
    invitations.main()


if __name__ == "__main__":
    main()
