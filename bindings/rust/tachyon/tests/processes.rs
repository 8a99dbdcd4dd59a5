//! The safe API across two processes: this test binary re-runs itself as the
//! producer (the `child_*` tests do nothing unless the parent set
//! TACHYON_TEST_CHILD_SOCKET).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::unique_socket;
use tachyon::{Bus, ErrorKind};

const CHILD_ENV: &str = "TACHYON_TEST_CHILD_SOCKET";
const COUNT: u64 = 20_000;

/// Start this test binary again, running only `test_name`, as a producer.
fn spawn_child(test_name: &str, socket: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the child producer")
}

fn child_socket() -> Option<std::path::PathBuf> {
    std::env::var_os(CHILD_ENV).map(Into::into)
}

fn child_connect(path: &std::path::Path) -> Bus {
    Bus::connect_timeout(path, Some(Duration::from_secs(10))).expect("child: connect")
}

#[test]
fn child_sends_numbered_messages_then_exits() {
    let Some(path) = child_socket() else { return };
    let mut bus = child_connect(&path);
    for i in 0..COUNT {
        let mut tx = bus.acquire_tx(8, Some(Duration::from_secs(10))).expect("child: acquire");
        tx.write(&i.to_le_bytes()).unwrap();
        tx.set_type_id((i % 3) as u32 + 1);
        tx.commit().expect("child: commit");
    }
}

#[test]
fn child_sends_three_then_aborts() {
    let Some(path) = child_socket() else { return };
    let mut bus = child_connect(&path);
    for i in 0u64..3 {
        bus.send(&i.to_le_bytes(), 1).expect("child: send");
    }
    // Die without closing the bus: the consumer must notice through the pid.
    std::process::abort();
}

#[test]
fn every_message_from_another_process_arrives_in_order() {
    let path = unique_socket("proc");
    let mut child = spawn_child("child_sends_numbered_messages_then_exits", &path);
    let mut rx = Bus::listen(&path, 1 << 16).expect("listen");
    let mut next = 0u64;
    loop {
        match rx.drain_batch(256, Some(Duration::from_secs(20))) {
            Ok(batch) => {
                for msg in &batch {
                    assert_eq!(u64::from_le_bytes(msg.data().try_into().unwrap()), next);
                    assert_eq!(msg.type_id(), (next % 3) as u32 + 1);
                    next += 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::PeerClosed => break,
            Err(e) => panic!("consumer: {e}"),
        }
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(next, COUNT);
}

#[test]
fn a_killed_producer_is_peer_dead_after_what_it_committed() {
    let path = unique_socket("abort");
    let mut child = spawn_child("child_sends_three_then_aborts", &path);
    let mut rx = Bus::listen(&path, 4096).expect("listen");
    let mut got = Vec::new();
    let err = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(msg) => got.push(u64::from_le_bytes(msg.data().try_into().unwrap())),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::PeerDead);
    assert!(err.to_string().contains("ended without closing"), "{err}");
    assert_eq!(got, vec![0, 1, 2]);
    assert!(!child.wait().unwrap().success());
}
