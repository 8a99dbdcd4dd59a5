//! A trading strategy reading the feed's ticks in place (no copy, no parse
//! beyond the few fields it needs): a fast and a slow moving average per
//! symbol, and a signal when they cross. Prints its counts every second.
//!
//! Usage: fanout-strategy <socket>

use std::time::{Duration, Instant};

use tachyon::fan::{FanOut, Start};
use tachyon::ErrorKind;

const SYMBOLS: usize = 8;

#[derive(Clone, Copy, Default)]
struct Averages {
    fast: f64,
    slow: f64,
    above: bool,
}

fn main() -> tachyon::Result<()> {
    let socket = std::env::args().nth(1).expect("usage: fanout-strategy <socket>");
    let mut reader = FanOut::connect(&socket, Start::Newest, Some(Duration::from_secs(30)))?;
    println!("strategy: joined as reader {}", reader.index());
    let mut avg = [Averages::default(); SYMBOLS];
    let (mut ticks, mut signals, mut missed) = (0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    loop {
        // Read the fields in place, then let the message go (the slot is released on drop).
        let tick = reader.recv(Some(Duration::from_millis(200))).map(|msg| {
            let d = msg.data();
            let sym = u32::from_le_bytes(d[16..20].try_into().unwrap()) as usize;
            let price = f64::from_le_bytes(d[20..28].try_into().unwrap());
            (sym, price)
        });
        match tick {
            Ok((sym, price)) if sym < SYMBOLS => {
                ticks += 1;
                let a = &mut avg[sym];
                if a.slow == 0.0 {
                    *a = Averages { fast: price, slow: price, above: false };
                }
                a.fast += (price - a.fast) * 0.2;
                a.slow += (price - a.slow) * 0.02;
                let above = a.fast > a.slow;
                if above != a.above {
                    signals += 1;
                    a.above = above;
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Overrun => {
                missed += reader.missed();
                println!("strategy: dropped by the feed, {} ticks missed", reader.missed());
            }
            Err(e) if e.kind() == ErrorKind::Timeout => {}
            Err(e) if e.kind() == ErrorKind::PeerClosed => break,
            Err(e) => return Err(e),
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            println!("strategy: {ticks} ticks, {signals} crossings, {missed} missed");
            last_report = Instant::now();
        }
    }
    println!("strategy: done, {ticks} ticks, {signals} crossings");
    Ok(())
}
