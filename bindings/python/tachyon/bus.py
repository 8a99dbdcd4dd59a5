"""tachyon.bus: where the published package defines Bus (here it is the C
extension's); kept so that `from tachyon.bus import Bus` keeps working."""
from ._tachyon import Bus

__all__ = ["Bus"]
