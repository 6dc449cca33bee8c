import sys

from payrule.cli import main

sys.exit(main())
