"""``python -m paretone.cli``: the same as the ``paretone`` command."""

import sys

from paretone.cli import main

sys.exit(main())
