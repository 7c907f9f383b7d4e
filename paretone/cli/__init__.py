"""The ``paretone`` command line. Nothing imports this package.

User errors (``ParetoneError``) end as one line on stderr and exit code 2, without a traceback.
Each command module registers its commands on the group when imported.
"""

from paretone.cli import _calibrate, _model, _pick, _search  # noqa: F401  (registers the commands)
from paretone.cli._common import cli


def main() -> None:
    cli.main(prog_name="paretone")


__all__ = ["cli", "main"]
