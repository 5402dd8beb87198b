import sys

from blis.cli import main

sys.exit(main())
