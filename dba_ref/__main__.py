"""``python -m dba_ref`` runs the ``dba-ref`` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
