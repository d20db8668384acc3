"""``python -m sasview_grf_plugin.cli``: the same as the ``sasview-grf`` console script."""

import sys

from . import main

sys.exit(main())
