"""``python -m jaxbp`` runs the command line."""

import sys

from jaxbp.cli import main

sys.exit(main())
