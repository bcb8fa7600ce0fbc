import sys

from galsr.cli import main

sys.exit(main())
