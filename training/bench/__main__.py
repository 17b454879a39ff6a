"""``python -m training.bench r1|h1|h2``."""
import sys

from training.bench import main

sys.exit(main())
