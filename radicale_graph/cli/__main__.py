"""``python -m radicale_graph.cli``: the ``radicale-graph`` command."""

import sys

from . import main

sys.exit(main())
