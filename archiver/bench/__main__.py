"""``python -m lmar.bench PATH...``: the same as ``lmar bench PATH...``."""
import sys

from .cli import main

sys.exit(main())
