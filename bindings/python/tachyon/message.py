"""tachyon.message: where the published package defines Message (here it is
the C extension's); kept so that `from tachyon.message import Message` keeps
working."""
from ._tachyon import Message

__all__ = ["Message"]
