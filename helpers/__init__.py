"""helpers: the logic of the SPIDER + UNETR course kit, shared by notebooks, command line and tests."""

__version__ = "0.1.0"
