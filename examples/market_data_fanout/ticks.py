"""The tick format shared by the feed and its readers (the Rust strategy reads
the same 32 bytes): sequence, send time (CLOCK_MONOTONIC ns), symbol id,
price, quantity, little-endian."""
import struct

TICK = struct.Struct("<QQIdI")  # 32 bytes
TICK_TYPE = 1
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "BRK.B")
