"""Voting helpers for controllers: re-exported from :mod:`autotts.voting`.

The helpers live at the bottom of the package (store statistics use them too); this
module is where controller code, including explorer-written controllers, imports them.
"""

from autotts.voting import beta_confidence, majority, top_two

__all__ = ["beta_confidence", "majority", "top_two"]
