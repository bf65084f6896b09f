"""`python -m framerturbo …` (and `accelerate launch -m framerturbo train …`)."""

import os
import sys

from .cli.main import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # torch's gloo teardown occasionally aborts a finished rank (seen on CPU); the work is done
    # and saved, so leave without running it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
