//! Fan-out and fan-in through the safe API: readers and producers in other
//! processes (this test binary re-runs itself; the `child_*` tests do nothing
//! unless TACHYON_TEST_FAN_CHILD is set), joins at every point, both
//! slow-reader policies, kill -9 of either side, and a plain bus at a fan
//! socket.

mod common;

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::unique_socket;
use tachyon::fan::{FanIn, FanInEvent, FanOut, SlowReader, Start};
use tachyon::{Bus, ErrorKind};

const CHILD_ENV: &str = "TACHYON_TEST_FAN_CHILD";
const COUNT: u64 = 20_000;
const LONG: Option<Duration> = Some(Duration::from_secs(30));

fn spawn_child(test_name: &str, socket: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn a child")
}

fn child_socket() -> Option<std::path::PathBuf> {
    std::env::var_os(CHILD_ENV).map(Into::into)
}

fn payload(n: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&n.to_le_bytes());
    b[8..].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    b
}

fn number(data: &[u8]) -> u64 {
    let n = u64::from_le_bytes(data[..8].try_into().unwrap());
    assert_eq!(u64::from_le_bytes(data[8..16].try_into().unwrap()), n.wrapping_mul(0x9E37_79B9_7F4A_7C15), "damaged");
    n
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what} did not happen");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn child_fan_reader_reads_everything() {
    let Some(path) = child_socket() else { return };
    let mut reader = FanOut::connect(&path, Start::Oldest, LONG).expect("child: connect");
    let mut next = 0;
    loop {
        match reader.recv(LONG) {
            Ok(msg) => {
                assert_eq!(number(msg.data()), next);
                assert_eq!(msg.seq(), next);
                next += 1;
            }
            Err(e) if e.kind() == ErrorKind::PeerClosed => break,
            Err(e) => panic!("child reader: {e}"),
        }
    }
    assert_eq!(next, COUNT);
}

#[test]
fn child_fan_reader_reads_nothing() {
    let Some(path) = child_socket() else { return };
    let _reader = FanOut::connect(&path, Start::Newest, LONG).expect("child: connect");
    thread::sleep(Duration::from_secs(600));
}

#[test]
fn child_fan_producer_sends_then_dies() {
    let Some(path) = child_socket() else { return };
    let mut feed = FanOut::listen(&path, 1 << 16, 2, SlowReader::Block).expect("child: listen");
    wait_until("a reader joined", || feed.consumers() == 1);
    for i in 0..300 {
        feed.send(&payload(i), 1, LONG).expect("child: send");
    }
    unsafe { libc_kill_self() };
}

#[test]
fn child_fanin_producer() {
    let Some(path) = child_socket() else { return };
    let (mut bus, _index) = FanIn::connect(&path, LONG).expect("child: join");
    for i in 0..COUNT {
        let mut tx = bus.acquire_tx(16, LONG).expect("child: acquire");
        tx.write(&payload(i)).unwrap();
        tx.set_type_id(1);
        tx.commit().expect("child: commit");
    }
}

#[test]
fn child_fanin_producer_aborts() {
    let Some(path) = child_socket() else { return };
    let (mut bus, _index) = FanIn::connect(&path, LONG).expect("child: join");
    for i in 0..100 {
        let mut tx = bus.acquire_tx(16, LONG).expect("child: acquire");
        tx.write(&payload(i)).unwrap();
        tx.set_type_id(2);
        tx.commit().expect("child: commit");
    }
    std::process::abort();
}

/// SIGKILL to ourselves, without a libc crate: abort() would run no
/// destructor either, but kill -9 is what the test is about.
unsafe fn libc_kill_self() -> ! {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
        fn getpid() -> i32;
    }
    kill(getpid(), 9);
    unreachable!("SIGKILL returned")
}

#[test]
fn readers_in_other_processes_see_every_message() {
    let path = unique_socket("fan-all");
    let mut feed = FanOut::listen(&path, 1 << 14, 4, SlowReader::Block).expect("listen");
    let mut kids: Vec<Child> = (0..2).map(|_| spawn_child("child_fan_reader_reads_everything", &path)).collect();
    wait_until("two readers joined", || feed.consumers() == 2);
    for i in 0..COUNT {
        let mut tx = feed.acquire_tx(16, LONG).expect("acquire");
        tx.buf().copy_from_slice(&payload(i));
        tx.set_type_id(1);
        tx.commit().expect("commit");
    }
    drop(feed);
    for kid in &mut kids {
        assert!(kid.wait().unwrap().success());
    }
}

#[test]
fn late_joiners_and_leaving() {
    let path = unique_socket("fan-late");
    let mut feed = FanOut::listen(&path, 1 << 16, 2, SlowReader::Block).expect("listen");
    for i in 0..10 {
        feed.send(&payload(i), 1, None).unwrap();
    }
    let mut old = FanOut::connect(&path, Start::Oldest, LONG).unwrap();
    let mut new = FanOut::connect(&path, Start::Newest, LONG).unwrap();
    assert_eq!(number(old.recv(LONG).unwrap().data()), 0);
    assert_eq!(number(new.recv(LONG).unwrap().data()), 9);
    assert_eq!(new.recv(Some(Duration::ZERO)).err().map(|e| e.kind()), Some(ErrorKind::Empty));
    assert_eq!(
        FanOut::connect(&path, Start::Newest, LONG).err().map(|e| e.kind()),
        Some(ErrorKind::Full),
        "the table holds two"
    );
    drop(old);
    drop(new);
    wait_until("both left", || feed.consumers() == 0);
    for i in 10..2000 {
        feed.send(&payload(i), 1, Some(Duration::ZERO)).expect("nobody holds the ring");
    }
    assert!(feed.acquire_tx(feed.max_payload() + 1, None).is_err());
}

#[test]
fn drop_policy_counts_what_was_missed() {
    let path = unique_socket("fan-drop");
    let mut feed = FanOut::listen(&path, 8192, 2, SlowReader::Drop).expect("listen");
    let mut slow = FanOut::connect(&path, Start::Oldest, LONG).unwrap();
    let total = 3000;
    for i in 0..total {
        feed.send(&payload(i), 1, Some(Duration::ZERO)).expect("never waits");
    }
    let (mut received, mut expect, mut overruns) = (0u64, 0u64, 0);
    loop {
        // The message is read and released here, so `slow` is free again below.
        let got = slow.recv(Some(Duration::from_millis(200))).map(|msg| number(msg.data()));
        match got {
            Ok(n) => {
                assert_eq!(n, expect);
                expect += 1;
                received += 1;
            }
            Err(e) if e.kind() == ErrorKind::Overrun => {
                assert!(slow.missed() > 0);
                expect += slow.missed();
                overruns += 1;
            }
            Err(e) if e.kind() == ErrorKind::Timeout => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(overruns >= 1);
    assert_eq!(received + slow.missed_total(), total);
}

#[test]
fn block_policy_times_out_and_a_killed_reader_releases_the_producer() {
    let path = unique_socket("fan-block");
    let mut feed = FanOut::listen(&path, 4096, 2, SlowReader::Block).expect("listen");
    let mut kid = spawn_child("child_fan_reader_reads_nothing", &path);
    wait_until("the reader joined", || feed.consumers() == 1);
    let mut sent = 0;
    let err = loop {
        match feed.send(&payload(sent), 1, Some(Duration::from_millis(100))) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!((16..=32).contains(&sent), "{sent}");
    kid.kill().unwrap();
    kid.wait().unwrap();
    for i in 0..200 {
        feed.send(&payload(sent + i), 1, LONG).expect("the dead reader no longer holds the ring");
    }
    assert_eq!(feed.consumers(), 0);
}

#[test]
fn a_killed_fanout_producer_is_peer_dead_after_its_last_message() {
    let path = unique_socket("fan-pkill");
    let mut kid = spawn_child("child_fan_producer_sends_then_dies", &path);
    let mut reader = FanOut::connect(&path, Start::Oldest, LONG).expect("connect");
    let mut next = 0;
    let err = loop {
        match reader.recv(LONG) {
            Ok(msg) => {
                assert_eq!(number(msg.data()), next);
                next += 1;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::PeerDead);
    assert_eq!(next, 300);
    assert!(!kid.wait().unwrap().success());
    // A producer that dies leaves its socket file behind (destroy removes it).
    std::fs::remove_file(&path).expect("the dead producer's socket file");
}

#[test]
fn fanin_from_processes_with_identity_and_departures() {
    let path = unique_socket("fan-in");
    let mut sink = FanIn::listen(&path, 8192, 4).expect("listen");
    let mut good = spawn_child("child_fanin_producer", &path);
    let mut bad = spawn_child("child_fanin_producer_aborts", &path);
    let (mut next_good, mut next_bad, mut left) = (0u64, 0u64, Vec::new());
    while left.len() < 2 {
        match sink.recv(LONG).expect("recv") {
            FanInEvent::Message(msg) => {
                let n = number(msg.data());
                if msg.type_id() == 1 {
                    assert_eq!((n, msg.pid() as u32), (next_good, good.id()));
                    next_good += 1;
                } else {
                    assert_eq!((n, msg.pid() as u32), (next_bad, bad.id()));
                    next_bad += 1;
                }
            }
            FanInEvent::Left { pid, dead, messages, .. } => left.push((pid as u32, dead, messages)),
        }
    }
    left.sort();
    let mut want = vec![(good.id(), false, COUNT), (bad.id(), true, 100)];
    want.sort();
    assert_eq!(left, want);
    assert_eq!((next_good, next_bad), (COUNT, 100));
    assert!(good.wait().unwrap().success());
    assert!(!bad.wait().unwrap().success());
}

#[test]
fn a_plain_bus_is_refused_at_fan_sockets() {
    let path = unique_socket("fan-kind");
    let _feed = FanOut::listen(&path, 4096, 1, SlowReader::Block).expect("listen");
    assert_eq!(Bus::connect(&path).err().map(|e| e.kind()), Some(ErrorKind::AbiMismatch));
    assert_eq!(FanIn::connect(&path, None).err().map(|e| e.kind()), Some(ErrorKind::AbiMismatch));
    let path2 = unique_socket("fan-kind-in");
    let _sink = FanIn::listen(&path2, 4096, 1).expect("listen");
    assert_eq!(Bus::connect(&path2).err().map(|e| e.kind()), Some(ErrorKind::AbiMismatch));
    assert_eq!(
        FanOut::connect(&path2, Start::Newest, None).err().map(|e| e.kind()),
        Some(ErrorKind::AbiMismatch)
    );
}
