"""The original package's ``creative_services.core``: deprecated names, loaded when used.

Each name warns once (``DeprecationWarning``) and names its replacement; see docs/upgrading.rst.
"""

from creative_services._compat import moved
from creative_services.core._names import CORE

__getattr__, __dir__ = moved(__name__, CORE)
