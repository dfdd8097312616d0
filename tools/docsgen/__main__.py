"""`python -m tools.docsgen [--check]`: write the generated reference pages, or only say which
are stale (exit 1)."""

from __future__ import annotations

import argparse
import sys

from tools.docsgen import REGENERATE, stale_pages, write_pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docsgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only list stale pages")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages()
        for page in stale:
            sys.stdout.write(f"stale: docs/{page} (run `{REGENERATE}`)\n")
        return 1 if stale else 0
    for page in write_pages():
        sys.stdout.write(f"wrote docs/{page}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
