"""``python -m biostruct``: the same as the ``biostruct`` command."""

from biostruct.cli import main

raise SystemExit(main())
