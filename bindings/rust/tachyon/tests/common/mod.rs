//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use tachyon::Bus;

/// A socket path no other test (or test run) uses.
pub fn unique_socket(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("tachyon-rs-{tag}-{}-{n}.sock", std::process::id()))
}

/// A connected pair in one process: (listener/consumer, connector/producer).
pub fn pair(tag: &str, capacity: usize) -> (Bus, Bus) {
    let path = unique_socket(tag);
    let listen_path = path.clone();
    let listener = thread::spawn(move || Bus::listen(&listen_path, capacity));
    let producer = Bus::connect_timeout(&path, Some(Duration::from_secs(10))).expect("connect");
    let consumer = listener.join().expect("listener thread").expect("listen");
    (consumer, producer)
}
