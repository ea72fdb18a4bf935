import sys

from pmed.cli import main

sys.exit(main())
