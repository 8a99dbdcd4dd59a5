//! Seed example, consumer side: receive MarketTicks from the Python producer
//! through the raw C API, check every one, and print throughput and one-way
//! latency.
//!
//! The consumer starts first and owns the socket (`tachyon_bus_listen`).
//! Environment: TACHYON_SOCKET (default tachyon_ticks.sock in $XDG_RUNTIME_DIR,
//! or in the temporary directory when that is unset, as the producer does),
//! TACHYON_CAPACITY (ring bytes, default 1 MiB), TICKS (how many ticks to
//! expect; by default the count the producer writes into its sentinel).
//! Exit status: 0 when every tick arrived once, in order and intact; 1 otherwise.

mod report;
mod tick;

use std::ffi::CString;
use std::process::ExitCode;
use std::ptr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tachyon_sys::*;

use report::Report;
use tick::{expected_tick, MarketTick, ASK, BID, SENTINEL, TICK_SIZE};

const DEFAULT_SOCKET_NAME: &str = "tachyon_ticks.sock";
const DEFAULT_CAPACITY: usize = 1 << 20;
/// Spins before the consumer sleeps on the futex, as in the seed.
const SPIN_THRESHOLD: u32 = 10_000;
/// How many bad ticks are described in detail before only counting them.
const MAX_REPORTED_ERRORS: usize = 5;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("consumer: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn env_number(name: &str) -> Result<Option<usize>, String> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| format!("{name}={v:?} is not a number")),
    }
}

fn strerror(code: tachyon_error_t) -> String {
    // SAFETY: tachyon_strerror returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(tachyon_strerror(code)) }.to_string_lossy().into_owned()
}

/// Nanoseconds since the Unix epoch: the clock Python's time.time_ns() reads.
#[inline]
fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The payload of one message, read field by field: the struct is packed
/// and the slot only 64-byte aligned, so each read is unaligned.
///
/// # Safety
///
/// `ptr` must point to at least TICK_SIZE readable bytes.
#[inline]
unsafe fn read_tick(ptr: *const u8) -> MarketTick {
    // SAFETY: the caller guarantees TICK_SIZE bytes; every field lies inside.
    unsafe {
        MarketTick {
            symbol: ptr.cast::<[u8; 8]>().read_unaligned(),
            price: ptr.add(8).cast::<f64>().read_unaligned(),
            quantity: ptr.add(16).cast::<u32>().read_unaligned(),
            timestamp: ptr.add(20).cast::<u64>().read_unaligned(),
        }
    }
}

/// The per-user runtime directory when there is one (no other user can
/// reach it), else the temporary directory: the producer's rule too.
fn default_socket() -> String {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
        _ => std::env::temp_dir(),
    };
    dir.join(DEFAULT_SOCKET_NAME).to_string_lossy().into_owned()
}

fn run() -> Result<bool, String> {
    let socket = std::env::var("TACHYON_SOCKET").unwrap_or_else(|_| default_socket());
    let capacity = env_number("TACHYON_CAPACITY")?.unwrap_or(DEFAULT_CAPACITY);
    let expected_count = env_number("TICKS")?;
    let pure_spin = env_number("TACHYON_PURE_SPIN")?.unwrap_or(0) != 0;
    let path = CString::new(socket.clone()).map_err(|_| "TACHYON_SOCKET contains a NUL byte".to_string())?;

    println!("consumer: listening on {socket} (ring {} KiB); start the producer now", capacity / 1024);
    let mut rx: *mut tachyon_bus_t = ptr::null_mut();
    // SAFETY: path is NUL-terminated and rx a valid out-pointer.
    let rc = unsafe { tachyon_bus_listen(path.as_ptr(), capacity, &mut rx) };
    if rc != TACHYON_SUCCESS {
        return Err(format!("cannot listen on {socket}: {}", strerror(rc)));
    }
    if pure_spin {
        // SAFETY: rx is a live bus.
        unsafe { tachyon_bus_set_polling_mode(rx, 1) };
    }
    println!("consumer: producer connected{}", if pure_spin { " (pure-spin polling)" } else { "" });

    // Room for every latency sample up front: no allocation while receiving.
    let mut report = Report::with_capacity(expected_count.unwrap_or(500_000));
    let result = receive_all(rx, &mut report);
    // SAFETY: rx came from tachyon_bus_listen and is dropped once, here.
    unsafe { tachyon_bus_destroy(rx) };
    let sentinel_count = result?;

    let expected = expected_count.unwrap_or(sentinel_count);
    report.print();
    Ok(report.verdict(expected, sentinel_count))
}

/// Read ticks until the sentinel; returns the count the sentinel announces.
fn receive_all(rx: *mut tachyon_bus_t, report: &mut Report) -> Result<usize, String> {
    let mut type_id: u32 = 0;
    let mut size: usize = 0;
    let mut first_tick: Option<Instant> = None;
    loop {
        // SAFETY: rx is a live bus, this thread is its only consumer.
        let ptr = unsafe { tachyon_acquire_rx_blocking(rx, &mut type_id, &mut size, SPIN_THRESHOLD) };
        let received_ns = realtime_ns();
        if ptr.is_null() {
            return Err(why_receive_stopped(rx));
        }
        let tick = if size >= TICK_SIZE {
            // SAFETY: the library checked that the slot of `size` bytes lies
            // inside the ring, and size >= TICK_SIZE.
            Some(unsafe { read_tick(ptr.cast()) })
        } else {
            None
        };
        // SAFETY: rx holds the slot acquired above; the tick was copied out.
        unsafe { tachyon_commit_rx(rx) };

        let start = *first_tick.get_or_insert_with(Instant::now);
        if type_id == SENTINEL {
            report.elapsed = start.elapsed();
            return Ok(tick.map_or(0, |t| t.quantity as usize));
        }
        let index = report.count;
        report.count += 1;
        match tick {
            Some(t) if size == TICK_SIZE => {
                report.latencies_ns.push(received_ns as i64 - t.timestamp as i64);
                match type_id {
                    BID => report.bids += 1,
                    ASK => report.asks += 1,
                    _ => {}
                }
                if let Err(what) = check_tick(index, type_id, &t) {
                    report.bad(what, MAX_REPORTED_ERRORS);
                }
            }
            _ => report.bad(format!("tick {index}: payload of {size} bytes, expected {TICK_SIZE}"), MAX_REPORTED_ERRORS),
        }
    }
}

/// Compare a received tick with the one the producer made for this index.
fn check_tick(index: usize, type_id: u32, got: &MarketTick) -> Result<(), String> {
    let (want, want_type) = expected_tick(index as u64);
    if got.symbol == want.symbol
        && got.price.to_bits() == want.price.to_bits()
        && got.quantity == want.quantity
        && type_id == want_type
    {
        return Ok(());
    }
    Err(format!(
        "tick {index}: got {} price {} qty {} type {type_id}, expected {} price {} qty {} type {want_type}",
        got.symbol_str(),
        { got.price },
        { got.quantity },
        want.symbol_str(),
        { want.price },
        { want.quantity }
    ))
}

fn why_receive_stopped(rx: *mut tachyon_bus_t) -> String {
    // SAFETY: rx is a live bus.
    let (state, err) = unsafe { (tachyon_get_state(rx), tachyon_bus_last_error(rx)) };
    match state {
        TACHYON_STATE_DISCONNECTED => "the producer went away before sending the sentinel".to_string(),
        TACHYON_STATE_FATAL_ERROR => "the ring is corrupt (fatal state)".to_string(),
        _ => format!("receive stopped: {}", strerror(err)),
    }
}
