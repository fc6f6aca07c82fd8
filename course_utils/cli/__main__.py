"""``python -m course_utils.cli ...`` (used by torchrun and ``accelerate launch``)."""

import sys

from course_utils.cli.main import main

sys.exit(main())
