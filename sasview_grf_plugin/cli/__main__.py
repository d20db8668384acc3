"""``python -m sasview_grf_plugin.cli``: the ``sasview-grf`` command."""

from . import main

raise SystemExit(main())
