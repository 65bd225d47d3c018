"""helpers: the logic of the SPIDER + UNETR course kit, shared by notebooks, command line and tests.

Used by every notebook; each module's docstring names the notebooks that use it.
"""

__version__ = "0.1.0"
