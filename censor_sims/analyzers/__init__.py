"""Protocol analyzers of the censor's DPI engine: they see and publish, rules decide.

    from censor_sims.analyzers import FlowInfo, classify
    props = classify(["tls", "fet"], FlowInfo("tcp", "10.0.0.2", 40000, "10.0.0.9", 443),
                     [(False, client_hello_bytes)])
    props["tls"]["sni"]

Importing the package registers every analyzer in `ANALYZERS` by name: each module of the
package is found and imported, so a new analyzer is one module and no list to keep.
"""

from censor_sims.analyzers.base import ANALYZERS, Analyzer, FlowInfo, Stream, get, names
from censor_sims.analyzers.flow import FlowAnalysis, classify
from censor_sims.discovery import import_submodules

# Every module not starting with `_` (and not the shared base/flow) registers its analyzers.
_MODULES = import_submodules(__name__, __path__, skip=("base", "flow"))

__all__ = [
    "ANALYZERS",
    "Analyzer",
    "FlowAnalysis",
    "FlowInfo",
    "Stream",
    "classify",
    "get",
    "names",
    *_MODULES,
]
