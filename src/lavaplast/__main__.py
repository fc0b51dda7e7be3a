"""``python -m lavaplast``: the ``lavaplast`` command."""

import sys

from lavaplast.cli import main

sys.exit(main())
