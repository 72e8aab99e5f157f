"""Temporary: modules written before ``tests/server`` became a package import their
helpers by bare name (``from spalloc_http import Client``, ``from test_service_jobs
import login``); this keeps those imports working until every branch is merged and
moved to ``tests.support`` / ``tests.server.service_support``. Remove it then, with
``spalloc_http.py``."""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).parent))
