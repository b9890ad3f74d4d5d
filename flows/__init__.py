"""Prefect flows and the `tokenmill` CLI. Nothing imports this package; it imports everything.

Prefect reads its settings from the environment when first imported, so the embedded defaults
(a local SQLite-backed temporary API with its home inside the project, analytics off, a start-up
timeout that a slow laptop meets) are set here, before any flow module imports prefect. Anything
the user set in the environment or a Prefect profile wins.
"""

from flows.settings import configure_prefect

configure_prefect()
