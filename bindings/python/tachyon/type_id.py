"""tachyon.type_id: where the published package defines the type_id helpers
(here they are the C extension's); kept so that
`from tachyon.type_id import make_type_id` keeps working."""
from ._tachyon import make_type_id, msg_type, route_id

__all__ = ["make_type_id", "msg_type", "route_id"]
