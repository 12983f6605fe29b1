"""``python -m dba_ref`` runs the ``dba-ref`` command."""
import sys

from .cli import main

sys.exit(main())
