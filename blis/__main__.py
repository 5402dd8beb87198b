import sys

from blis.cli import console

sys.exit(console())
