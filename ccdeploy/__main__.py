"""``python -m ccdeploy``."""

from ccdeploy._cli import entry_point

entry_point()
