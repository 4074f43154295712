"""Run the benches: `python -m bench` (all), or `python -m bench NAME [options]` (one)."""

import sys

from bench import history, imports, invitations, load, portfolio, production, steps

BENCHES = ("invitations", "imports", "history", "steps", "portfolio", "production", "load")


def main(argv: list[str] | None = None) -> None:
    """Run the named bench (its options after the name), or every bench with its defaults."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in BENCHES:
        chosen = [args.pop(0)]
    elif args:
        raise SystemExit(f"usage: python -m bench [{'|'.join(BENCHES)} [options]]")
    else:
        chosen = list(BENCHES)
    for name in chosen:
        if name == "invitations":
            if args:
                raise SystemExit("bench invitations takes no options")
            invitations.main()
        elif name == "imports":
            imports.main(args)
        elif name == "steps":
            steps.main(args)
        elif name == "portfolio":
            portfolio.main(args)
        elif name == "production":
            production.main(args)
        elif name == "load":
            # Without options (make bench): the sweep over 1,000 cases; `load cases` is long.
            load.main(args or ["sweep"])
        else:
            history.main(args)


if __name__ == "__main__":
    main()
