//! Request/reply example, server side: a pricing service.
//!
//! It listens at TACHYON_SOCKET (default /tmp/tachyon_pricing.sock) and
//! answers the Python client (client.py) until the client closes:
//!
//! - QUOTE (msg_type 1): a 16-byte request `<8sIB3x` (symbol, quantity,
//!   side: 0 buy, 1 sell) gets a 32-byte quote `<8sddd` (symbol, unit price,
//!   total, fee). An unknown symbol gets an error reply, which the client
//!   sees as `tachyon.RpcError`.
//! - STATS (msg_type 2): `<QQ`, the quotes given and the requests refused.
//!
//! Prices: a mid price per symbol, a spread of 5 basis points each side
//! (half that from 1000 units up), a fee of 10 basis points of the total.
//! client.py computes the same formula and checks every quote.
//!
//! Environment: TACHYON_SOCKET; PURE_SPIN=1 to serve without ever sleeping
//! (lowest latency; one core busy). Exit status 0 after a clean close.

use std::process::ExitCode;
use std::time::Instant;

use tachyon::{ErrorKind, PollingMode, RpcServer};

const DEFAULT_SOCKET: &str = "/tmp/tachyon_pricing.sock";
const QUOTE: u16 = 1;
const STATS: u16 = 2;
const REQUEST_SIZE: usize = 16;
const QUOTE_SIZE: usize = 32;
const RING: usize = 1 << 16;

const MID_PRICES: &[(&[u8; 8], f64)] = &[
    (b"BTCUSDT\0", 64_000.0),
    (b"ETHUSDT\0", 3_200.0),
    (b"SOLUSDT\0", 150.0),
    (b"EURUSD\0\0", 1.085),
];
const SPREAD: f64 = 0.0005;
const LARGE_ORDER: u32 = 1000;
const FEE: f64 = 0.001;

/// The quote for `quantity` of `symbol` on `side` (0 buy, 1 sell), or None
/// for a symbol the service does not price.
fn quote(symbol: &[u8; 8], quantity: u32, side: u8) -> Option<(f64, f64, f64)> {
    let mid = MID_PRICES.iter().find(|(s, _)| *s == symbol)?.1;
    let spread = if quantity >= LARGE_ORDER { SPREAD / 2.0 } else { SPREAD };
    let unit = if side == 0 { mid * (1.0 + spread) } else { mid * (1.0 - spread) };
    let total = unit * f64::from(quantity);
    Some((unit, total, total * FEE))
}

/// Answer one request into `reply`: its length, or None to refuse it.
fn handle(msg_type: u16, request: &[u8], reply: &mut [u8], served: &mut u64, refused: &mut u64) -> Option<usize> {
    let answer = match msg_type {
        QUOTE if request.len() == REQUEST_SIZE => {
            let symbol: &[u8; 8] = request[..8].try_into().unwrap();
            let quantity = u32::from_le_bytes(request[8..12].try_into().unwrap());
            quote(symbol, quantity, request[12]).map(|(unit, total, fee)| {
                reply[..8].copy_from_slice(symbol);
                reply[8..16].copy_from_slice(&unit.to_le_bytes());
                reply[16..24].copy_from_slice(&total.to_le_bytes());
                reply[24..32].copy_from_slice(&fee.to_le_bytes());
                QUOTE_SIZE
            })
        }
        STATS => {
            reply[..8].copy_from_slice(&served.to_le_bytes());
            reply[8..16].copy_from_slice(&refused.to_le_bytes());
            return Some(16);
        }
        _ => None,
    };
    match answer {
        Some(_) => *served += 1,
        None => *refused += 1, // the client gets an error reply
    }
    answer
}

fn main() -> ExitCode {
    let socket = std::env::var("TACHYON_SOCKET").unwrap_or_else(|_| DEFAULT_SOCKET.to_string());
    let mut server = match RpcServer::listen(&socket, RING, RING) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("service: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::var("PURE_SPIN").is_ok_and(|v| v == "1") {
        server.set_polling_mode(PollingMode::PureSpin);
    }
    println!("service: a client connected on {socket}");
    let (mut served, mut refused) = (0u64, 0u64);
    let start = Instant::now();
    let result = server.run(QUOTE_SIZE, |msg_type, request, reply| {
        handle(msg_type, request, reply, &mut served, &mut refused)
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "service: {served} quotes given, {refused} refused, in {secs:.2} s ({:.0} requests/s while connected)",
        (served + refused) as f64 / secs.max(1e-9)
    );
    match result {
        Ok(()) => {
            println!("service: the client closed the connection");
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == ErrorKind::PeerDead => {
            eprintln!("service: the client died: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_follow_the_formula() {
        let (unit, total, fee) = quote(b"BTCUSDT\0", 2, 0).unwrap();
        assert_eq!(unit, 64_000.0 * 1.0005);
        assert_eq!(total, unit * 2.0);
        assert_eq!(fee, total * 0.001);
        let (unit, _, _) = quote(b"BTCUSDT\0", 5000, 1).unwrap();
        assert_eq!(unit, 64_000.0 * (1.0 - 0.00025));
        assert!(quote(b"DOGEUSD\0", 1, 0).is_none());
    }

    #[test]
    fn unknown_requests_are_refused_and_counted() {
        let (mut served, mut refused) = (0, 0);
        let mut reply = [0u8; QUOTE_SIZE];
        assert_eq!(handle(9, b"", &mut reply, &mut served, &mut refused), None);
        assert_eq!(handle(QUOTE, &[0; 3], &mut reply, &mut served, &mut refused), None);
        let mut request = [0u8; REQUEST_SIZE];
        request[..8].copy_from_slice(b"ETHUSDT\0");
        request[8..12].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(handle(QUOTE, &request, &mut reply, &mut served, &mut refused), Some(QUOTE_SIZE));
        assert_eq!((served, refused), (1, 2));
        assert_eq!(handle(STATS, b"", &mut reply, &mut served, &mut refused), Some(16));
        assert_eq!(u64::from_le_bytes(reply[8..16].try_into().unwrap()), 2);
    }
}
