"""``python -m juanji.bench``: see ``juanji.bench.conductor``."""
import sys

from .conductor import main

sys.exit(main())
