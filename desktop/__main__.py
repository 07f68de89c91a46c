"""``python -m desktop``: the tray app."""

import sys

from desktop.app import main

sys.exit(main())
