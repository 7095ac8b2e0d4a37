"""Demo data and the ``herald demo`` command."""
