"""`python -m framerturbo …` (and `accelerate launch -m framerturbo train …`)."""

import sys

from .cli import main

sys.exit(main())
