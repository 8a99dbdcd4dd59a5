//! AsyncBus on tokio (feature `tokio`): messages and room through the
//! descriptor while other tasks run, timeouts, the peer's end through
//! `.await` (a producer process that dies), 10 000 cancelled receives and
//! 10 000 cancelled sends that lose and duplicate nothing, and the
//! descriptor itself under poll.
#![cfg(feature = "tokio")]

mod common;

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{pair, unique_socket};
use tachyon::{AsyncBus, Bus, ErrorKind, Wait};

const LONG: Duration = Duration::from_secs(20);
const CHILD_ENV: &str = "TACHYON_TOKIO_TEST_CHILD_SOCKET";
const CANCELS: u32 = 10_000;

fn seq(data: &[u8]) -> u64 {
    u64::from_le_bytes(data.try_into().expect("an 8-byte message"))
}

/// A small deterministic generator (xorshift), so failures repeat.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn poll_readable(fd: i32, timeout_ms: i32) -> bool {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    extern "C" {
        fn poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
    }
    let mut p = PollFd { fd, events: 1, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { poll(&mut p, 1, timeout_ms) == 1 && (p.revents & 1) != 0 }
}

#[test]
fn the_descriptor_is_armed_and_turns_readable_for_a_message() {
    let (mut rx, mut tx) = pair("tokio-fd", 4096);
    let fd = rx.event_fd().unwrap();
    assert_eq!(rx.event_fd().unwrap(), fd);
    assert!(!rx.arm(Wait::Rx).unwrap());
    assert!(!poll_readable(fd, 20));
    tx.send(b"hi", 7).unwrap();
    assert!(poll_readable(fd, 5000));
    assert!(rx.arm(Wait::Rx).unwrap());
    assert_eq!(rx.try_recv().unwrap().unwrap().data(), b"hi");
    assert!(!rx.arm(Wait::Rx).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_gets_every_message_while_other_tasks_run() {
    let (rx, mut tx) = pair("tokio-recv", 4096);
    let producer = thread::spawn(move || {
        for i in 0..5_000u64 {
            tx.acquire_tx(8, Some(LONG)).unwrap().write(&i.to_le_bytes()).unwrap();
            if i % 100 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let ticker = tokio::spawn(async {
        let mut ticks = 0u32;
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        loop {
            interval.tick().await;
            ticks += 1;
            if ticks == 20 {
                return ticks;
            }
        }
    });
    let consumer = tokio::spawn(async move {
        let mut rx = AsyncBus::new(rx).unwrap();
        let mut next = 0u64;
        loop {
            match rx.recv_timeout(LONG).await {
                Ok(msg) => {
                    assert_eq!(seq(msg.data()), next);
                    next += 1;
                }
                Err(e) if e.kind() == ErrorKind::PeerClosed => return next,
                Err(e) => panic!("consumer: {e}"),
            }
        }
    });
    assert_eq!(consumer.await.unwrap(), 5_000);
    assert_eq!(ticker.await.unwrap(), 20);
    producer.join().unwrap();
}

#[tokio::test]
async fn recv_batch_takes_what_is_there_in_place() {
    let (rx, mut tx) = pair("tokio-batch", 1 << 16);
    let producer = thread::spawn(move || {
        for i in 0..20_000u64 {
            tx.acquire_tx(8, Some(LONG)).unwrap().write(&i.to_le_bytes()).unwrap();
        }
    });
    let mut rx = AsyncBus::new(rx).unwrap();
    let mut next = 0u64;
    loop {
        match rx.recv_batch_timeout(256, LONG).await {
            Ok(batch) => {
                assert!((1..=256).contains(&batch.len()));
                for msg in &batch {
                    assert_eq!(seq(msg.data()), next);
                    next += 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::PeerClosed => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(next, 20_000);
    producer.join().unwrap();
}

#[tokio::test]
async fn timeouts_are_kept_and_a_later_message_still_comes() {
    let (rx, tx) = pair("tokio-timeout", 1024);
    let mut rx = AsyncBus::new(rx).unwrap();
    let t0 = Instant::now();
    let err = rx.recv_timeout(Duration::from_millis(50)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(rx.recv_batch_timeout(8, Duration::from_millis(5)).await.unwrap_err().kind(), ErrorKind::Timeout);

    let mut tx = AsyncBus::new(tx).unwrap();
    while tx.bus().send(&[1u8; 100], 1).is_ok() {}
    let t0 = Instant::now();
    let err = tx.send_timeout(b"more", 2, Duration::from_millis(50)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(t0.elapsed() >= Duration::from_millis(50));
    // Room made by the consumer lets the next send through.
    while rx.bus().try_recv().unwrap().is_some() {}
    tx.send_timeout(b"more", 2, LONG).await.unwrap();
    let msg = rx.recv_timeout(LONG).await.unwrap();
    assert_eq!((msg.type_id(), msg.data()), (2, &b"more"[..]));
}

#[tokio::test]
async fn send_waits_for_room_from_a_slow_consumer() {
    let (mut rx, tx) = pair("tokio-send", 1024);
    let consumer = thread::spawn(move || {
        let mut next = 0u64;
        loop {
            match rx.recv_timeout(LONG) {
                Ok(msg) => assert_eq!(seq(msg.data()), next),
                Err(e) if e.kind() == ErrorKind::PeerClosed => return next,
                Err(e) => panic!("consumer: {e}"),
            }
            next += 1;
            if next % 200 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let mut tx = AsyncBus::new(tx).unwrap();
    for i in 0..5_000u64 {
        tx.send(&i.to_le_bytes(), 1).await.unwrap();
    }
    assert!(tx.bus().stats().unwrap().ring_full > 0);
    drop(tx);
    assert_eq!(consumer.join().unwrap(), 5_000);
}

// ---- the peer's end, from another process ----------------------------------------

fn child_socket() -> Option<std::path::PathBuf> {
    std::env::var_os(CHILD_ENV).map(Into::into)
}

fn spawn_child(test_name: &str, socket: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the child producer")
}

#[test]
fn child_sends_three_then_dies() {
    let Some(path) = child_socket() else { return };
    let mut bus = Bus::connect_timeout(&path, Some(LONG)).expect("child: connect");
    for i in 0u64..3 {
        bus.send(&i.to_le_bytes(), 1).expect("child: send");
    }
    thread::sleep(Duration::from_millis(100)); // the consumer is waiting by then
    std::process::abort();
}

#[tokio::test]
async fn a_dead_producer_is_peer_dead_through_await() {
    let path = unique_socket("tokio-dead");
    let mut child = spawn_child("child_sends_three_then_dies", &path);
    let mut rx = AsyncBus::listen(&path, 4096).await.expect("listen");
    let mut got = Vec::new();
    let err = loop {
        match rx.recv_timeout(LONG).await {
            Ok(msg) => got.push(seq(msg.data())),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::PeerDead, "{err}");
    assert_eq!(got, vec![0, 1, 2]);
    assert!(!child.wait().unwrap().success());
}

// ---- cancellation ----------------------------------------------------------------

/// Yield to the runtime `n` times.
async fn rounds(n: u64) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn cancelled_receives_lose_and_duplicate_nothing() {
    let (rx, mut tx) = pair("tokio-cancel-rx", 4096);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_producer = stop.clone();
    let producer = thread::spawn(move || {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut i = 0u64;
        while !stop_producer.load(std::sync::atomic::Ordering::Relaxed) {
            match tx.acquire_tx(8, Some(Duration::from_millis(100))) {
                Ok(mut slot) => {
                    slot.write(&i.to_le_bytes()).unwrap();
                    slot.commit().unwrap();
                    i += 1;
                }
                Err(e) if e.kind() == ErrorKind::Timeout => continue,
                Err(e) => panic!("producer: {e}"),
            }
            if rng.below(2) == 0 {
                thread::sleep(Duration::from_micros(rng.below(200)));
            }
        }
        i
    });
    let mut rx = AsyncBus::new(rx).unwrap();
    let mut rng = Rng(42);
    let (mut next, mut cancelled) = (0u64, 0u32);
    while cancelled < CANCELS {
        let n = rng.below(7);
        tokio::select! {
            biased;
            msg = rx.recv() => {
                assert_eq!(seq(msg.unwrap().data()), next, "lost or duplicated");
                next += 1;
            }
            _ = rounds(n) => cancelled += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = producer.join().unwrap();
    loop {
        match rx.recv_timeout(LONG).await {
            Ok(msg) => {
                assert_eq!(seq(msg.data()), next, "lost or duplicated");
                next += 1;
            }
            Err(e) if e.kind() == ErrorKind::PeerClosed => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(next, sent);
}

#[tokio::test]
async fn cancelled_sends_send_nothing() {
    let (mut rx, tx) = pair("tokio-cancel-tx", 1024);
    let consumer = thread::spawn(move || {
        let mut rng = Rng(7);
        let mut next = 0u64;
        loop {
            match rx.recv_timeout(LONG) {
                Ok(msg) => assert_eq!(seq(msg.data()), next, "lost or duplicated"),
                Err(e) if e.kind() == ErrorKind::PeerClosed => return next,
                Err(e) => panic!("consumer: {e}"),
            }
            next += 1;
            if rng.below(2) == 0 {
                thread::sleep(Duration::from_micros(rng.below(200)));
            }
        }
    });
    let mut tx = AsyncBus::new(tx).unwrap();
    let mut rng = Rng(99);
    let (mut i, mut cancelled) = (0u64, 0u32);
    while cancelled < CANCELS {
        let n = rng.below(7);
        let payload = i.to_le_bytes();
        tokio::select! {
            biased;
            sent = tx.send(&payload, 1) => {
                sent.unwrap();
                i += 1;
            }
            _ = rounds(n) => cancelled += 1,
        }
    }
    drop(tx);
    assert_eq!(consumer.join().unwrap(), i);
}
