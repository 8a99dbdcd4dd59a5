//! The MarketTick wire format (32 bytes, little-endian, packed) and the
//! deterministic ticks the producer sends, so every field can be checked.
//!
//! | bytes  | field                                  |
//! |--------|----------------------------------------|
//! | 0..8   | symbol, ASCII, NUL-padded              |
//! | 8..16  | price, f64                             |
//! | 16..20 | quantity, u32                          |
//! | 20..28 | timestamp, u64 ns, Python time.time_ns() |
//! | 28..32 | padding                                |
//!
//! Must match `tick_fields` in ../producer.py.

pub const TICK_SIZE: usize = 32;
pub const SENTINEL: u32 = 0;
pub const BID: u32 = 1;
pub const ASK: u32 = 2;

/// One tick as read from the ring (the padding is not kept).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct MarketTick {
    pub symbol: [u8; 8],
    pub price: f64,
    pub quantity: u32,
    pub timestamp: u64,
}

impl MarketTick {
    pub fn symbol_str(&self) -> String {
        let symbol = self.symbol;
        let end = symbol.iter().position(|&b| b == 0).unwrap_or(symbol.len());
        String::from_utf8_lossy(&symbol[..end]).into_owned()
    }
}

const SYMBOLS: [&[u8; 8]; 4] = [b"BTCUSDT\0", b"ETHUSDT\0", b"SOLUSDT\0", b"XRPUSDT\0"];

/// The tick the producer sends at `index` (timestamp aside) and its type id.
/// Prices are multiples of 0.25, exact in binary, so both languages agree
/// bit for bit; the quantity is index + 1, so a lost or repeated tick shows.
pub fn expected_tick(index: u64) -> (MarketTick, u32) {
    let tick = MarketTick {
        symbol: *SYMBOLS[(index % 4) as usize],
        price: 20_000.0 + (index % 10_000) as f64 * 0.25,
        quantity: (index + 1) as u32,
        timestamp: 0,
    };
    (tick, if index % 2 == 0 { BID } else { ASK })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_32_bytes_with_padding() {
        assert_eq!(std::mem::size_of::<MarketTick>() + 4, TICK_SIZE);
    }

    #[test]
    fn expected_ticks_follow_the_producer_formula() {
        let (t, ty) = expected_tick(0);
        let (sym, price, qty) = (t.symbol_str(), t.price, t.quantity);
        assert_eq!((sym.as_str(), price, qty, ty), ("BTCUSDT", 20_000.0, 1, BID));
        let (t, ty) = expected_tick(10_001);
        let (sym, price, qty) = (t.symbol_str(), t.price, t.quantity);
        assert_eq!((sym.as_str(), price, qty, ty), ("ETHUSDT", 20_000.25, 10_002, ASK));
    }
}
