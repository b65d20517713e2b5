"""Built-in techniques: importing this package registers them by type name.

Every module of this package whose name does not start with `_` is imported, so a new
technique is one module here (a Technique subclass with its `type` literal) and nothing
else: no list to keep.
"""

from censor_sims.discovery import import_submodules

__all__ = import_submodules(__name__, __path__)
