//! The safe API between two threads of one process.

mod common;

use std::time::Duration;

use common::{pair, unique_socket};
use tachyon::{Bus, Error, ErrorKind, ListenOptions, PollingMode, State};

const SHORT: Duration = Duration::from_millis(200);

#[test]
fn messages_arrive_in_order_with_their_type_ids() {
    let (mut rx, mut tx) = pair("order", 1 << 16);
    for i in 0u32..1000 {
        tx.send(&i.to_le_bytes(), i % 7).unwrap();
        let msg = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(msg.data(), i.to_le_bytes());
        assert_eq!(msg.type_id(), i % 7);
    }
}

/// A producer thread sends 0..n as u64s, then drops its bus; the consumer
/// checks every number arrives once and in order, then PeerClosed.
fn stream_numbers(mut rx: Bus, mut tx: Bus, n: u64) {
    let producer = std::thread::spawn(move || {
        for i in 0..n {
            tx.send_blocking(&i.to_le_bytes(), 1, Some(Duration::from_secs(10))).unwrap();
        }
        // tx dropped here: the consumer sees PeerClosed after the last message.
    });
    let mut expected = 0u64;
    loop {
        match rx.recv() {
            Ok(msg) => {
                let got = u64::from_le_bytes(msg.data().try_into().unwrap());
                assert_eq!(got, expected);
                expected += 1;
            }
            Err(e) if e.kind() == ErrorKind::PeerClosed => break,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    producer.join().unwrap();
    assert_eq!(expected, n);
}

#[test]
fn a_consumer_thread_receives_everything_a_producer_thread_sends() {
    let (rx, tx) = pair("threads", 4096);
    stream_numbers(rx, tx, 50_000);
}

#[test]
fn tx_guard_commits_on_drop() {
    let (mut rx, mut tx) = pair("txdrop", 4096);
    {
        let mut slot = tx.try_acquire_tx(64).unwrap();
        slot.write(b"in place").unwrap();
        slot.set_type_id(9);
    }
    let msg = rx.recv_timeout(SHORT).unwrap();
    assert_eq!((msg.data(), msg.type_id()), (&b"in place"[..], 9));
}

#[test]
fn tx_guard_defaults_to_the_reserved_length() {
    let (mut rx, mut tx) = pair("txlen", 4096);
    let mut slot = tx.acquire_tx(4, None).unwrap();
    slot.buf().copy_from_slice(b"abcd");
    assert_eq!(slot.len(), 4);
    slot.commit().unwrap();
    assert_eq!(rx.recv_timeout(SHORT).unwrap().data(), b"abcd");
}

#[test]
fn tx_guard_rolls_back_explicitly_and_on_panic() {
    let (mut rx, mut tx) = pair("txrollback", 4096);
    let mut slot = tx.try_acquire_tx(8).unwrap();
    slot.write(b"never").unwrap();
    slot.rollback().unwrap();

    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut slot = tx.try_acquire_tx(8).unwrap();
        slot.write(b"nor this").unwrap();
        panic!("producer bug while writing");
    }));
    assert!(panicked.is_err());

    tx.send(b"only me", 3).unwrap();
    let msg = rx.recv_timeout(SHORT).unwrap();
    assert_eq!((msg.data(), msg.type_id()), (&b"only me"[..], 3));
    drop(msg);
    assert!(matches!(rx.try_recv(), Ok(None)));
}

#[test]
fn rx_guard_releases_the_slot_on_drop() {
    // A ring of 256 bytes holds two 64-byte messages (64-byte header each);
    // the producer can only keep going if dropped guards free their slots.
    let (mut rx, mut tx) = pair("rxdrop", 256);
    for i in 0u8..50 {
        tx.send(&[i; 64], 1).unwrap();
        let msg = rx.try_recv().unwrap().expect("a message is there");
        assert_eq!(msg.data(), [i; 64]);
    }
}

#[test]
fn full_ring_is_reported_not_blocked_on() {
    let (_rx, mut tx) = pair("full", 256);
    tx.send(&[0; 64], 1).unwrap();
    tx.send(&[0; 64], 1).unwrap();
    assert_eq!(tx.send(&[0; 64], 1).unwrap_err().kind(), ErrorKind::Full);
    assert_eq!(tx.acquire_tx(64, Some(Duration::from_millis(30))).err().map(|e| e.kind()), Some(ErrorKind::Timeout));
}

#[test]
fn batch_drain_takes_many_and_releases_them_together() {
    let (mut rx, mut tx) = pair("batch", 1 << 16);
    let records: Vec<u8> = (0u32..100).flat_map(|i| i.to_le_bytes()).collect();
    assert_eq!(tx.send_batch(&records, 4, 5).unwrap(), 100);

    let mut seen = Vec::new();
    while seen.len() < 100 {
        let batch = rx.drain_batch(32, Some(Duration::from_secs(5))).unwrap();
        assert!(batch.len() <= 32);
        for msg in &batch {
            assert_eq!(msg.type_id(), 5);
            seen.push(u32::from_le_bytes(msg.data().try_into().unwrap()));
        }
    }
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    assert!(rx.try_recv_batch(8).unwrap().is_empty());
}

#[test]
fn batch_get_and_explicit_commit() {
    let (mut rx, mut tx) = pair("batchget", 4096);
    tx.send(b"a", 1).unwrap();
    tx.send(b"bc", 2).unwrap();
    let batch = rx.drain_batch(8, Some(SHORT)).unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.get(1).map(|m| (m.data(), m.type_id())), Some((&b"bc"[..], 2)));
    assert!(batch.get(2).is_none());
    batch.commit().unwrap();
    assert!(matches!(rx.try_recv(), Ok(None)));
}

#[test]
fn receiving_times_out_on_an_empty_ring() {
    let (mut rx, _tx) = pair("timeout", 4096);
    assert_eq!(rx.recv_timeout(Duration::from_millis(20)).err().map(|e| e.kind()), Some(ErrorKind::Timeout));
    assert_eq!(rx.drain_batch(4, Some(Duration::from_millis(20))).err().map(|e| e.kind()), Some(ErrorKind::Timeout));
}

#[test]
fn a_closed_producer_is_peer_closed_after_its_last_message() {
    let (mut rx, mut tx) = pair("peerclose", 4096);
    tx.send(b"last words", 1).unwrap();
    drop(tx);
    assert_eq!(rx.recv_timeout(SHORT).unwrap().data(), b"last words");
    assert_eq!(rx.recv().err().map(|e| e.kind()), Some(ErrorKind::PeerClosed));
    assert_eq!(rx.state(), State::Disconnected);
    assert!(!rx.peer_alive());
}

#[test]
fn a_closed_consumer_is_peer_closed_for_a_waiting_producer() {
    let (rx, mut tx) = pair("consumerclose", 256);
    tx.send(&[0; 64], 1).unwrap();
    tx.send(&[0; 64], 1).unwrap();
    drop(rx);
    assert_eq!(tx.acquire_tx(64, Some(Duration::from_secs(5))).err().map(|e| e.kind()), Some(ErrorKind::PeerClosed));
}

#[test]
fn sizes_are_checked() {
    let (mut rx, mut tx) = pair("sizes", 4096);
    assert_eq!(tx.capacity(), 4096);
    assert_eq!(tx.max_payload(), 4096 - 64);
    assert_eq!(tx.try_acquire_tx(4096).err().map(|e| e.kind()), Some(ErrorKind::InvalidSize));
    let mut slot = tx.try_acquire_tx(4).unwrap();
    assert_eq!(slot.write(b"too long").unwrap_err().kind(), ErrorKind::InvalidSize);
    slot.rollback().unwrap();
    assert_eq!(tx.send_batch(b"abc", 2, 1).unwrap_err().kind(), ErrorKind::InvalidSize);
    assert_eq!(rx.drain_batch(0, None).err().map(|e| e.kind()), Some(ErrorKind::InvalidSize));
}

#[test]
fn listen_refuses_bad_capacities_and_paths() {
    let path = unique_socket("badcap");
    assert_eq!(Bus::listen(&path, 1000).err().map(|e| e.kind()), Some(ErrorKind::InvalidSize));
    assert_eq!(Bus::listen("/tmp/nul\0path", 4096).err().map(|e| e.kind()), Some(ErrorKind::InvalidPath));
    let long = format!("/tmp/{}", "x".repeat(200));
    assert_eq!(Bus::listen(long, 4096).err().map(|e| e.kind()), Some(ErrorKind::PathTooLong));
}

#[test]
fn listen_never_removes_a_file_that_is_not_a_socket() {
    let path = unique_socket("notsock");
    std::fs::write(&path, b"precious").unwrap();
    assert_eq!(Bus::listen(&path, 4096).err().map(|e| e.kind()), Some(ErrorKind::NotSocket));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn listen_and_connect_time_out_alone() {
    let path = unique_socket("alone");
    let opts = ListenOptions::new(4096).timeout(Duration::from_millis(50));
    assert_eq!(Bus::listen_with(&path, &opts).err().map(|e| e.kind()), Some(ErrorKind::Timeout));
    let err = Bus::connect_timeout(&path, Some(Duration::from_millis(50))).err().map(|e| e.kind());
    assert!(matches!(err, Some(ErrorKind::Timeout) | Some(ErrorKind::Network)), "{err:?}");
    assert!(Bus::connect(&path).is_err());
}

#[test]
fn pure_spin_mode_still_delivers() {
    let (mut rx, mut tx) = pair("purespin", 4096);
    rx.set_polling_mode(PollingMode::PureSpin);
    tx.send(b"x", 1).unwrap();
    assert_eq!(rx.recv_timeout(SHORT).unwrap().data(), b"x");
    rx.set_polling_mode(PollingMode::SpinThenSleep);
}

#[test]
fn bus_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Bus>();
}

#[test]
fn errors_are_std_errors_with_messages() {
    let err: Box<dyn std::error::Error> = Box::new(Error::from(ErrorKind::PeerDead));
    assert!(err.to_string().contains("peer"));
    let io: std::io::Error = Error::from(ErrorKind::Timeout).into();
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn errors_carry_the_c_librarys_detail() {
    // What `?` in main prints (Debug) and what Display shows: the path and
    // the reason, not only the kind.
    let path = unique_socket("nobody");
    let err = Bus::connect(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network);
    let shown = err.to_string();
    assert!(shown.contains(path.to_str().unwrap()) && shown.contains("no such file"), "{shown}");
    let debug = format!("{err:?}");
    assert!(debug.contains("Network") && debug.contains(path.to_str().unwrap()), "{debug}");

    let file = unique_socket("regular");
    std::fs::write(&file, b"x").unwrap();
    let err = Bus::listen(&file, 4096).unwrap_err();
    assert!(err.message().contains(file.to_str().unwrap()) && err.message().contains("not a socket"), "{err}");
    std::fs::remove_file(&file).unwrap();

    let (_rx, mut tx) = pair("detail", 4096);
    let mut slot = tx.try_acquire_tx(4).unwrap();
    let err = slot.write(b"too long").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize);
    assert!(err.message().contains("8 bytes"), "{err}");
}

fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").expect("procfs").uid()
}

#[test]
fn connect_allowing_checks_the_listeners_user() {
    let path = unique_socket("allow");
    let listen_path = path.clone();
    let opts = ListenOptions::new(4096).timeout(Duration::from_secs(10));
    let listener = std::thread::spawn(move || Bus::listen_with(&listen_path, &opts));
    let stranger = my_uid().wrapping_add(4242);
    let refused = Bus::connect_allowing(&path, Some(Duration::from_secs(10)), &[stranger]);
    assert_eq!(refused.err().map(|e| e.kind()), Some(ErrorKind::Permission));
    drop(listener.join().unwrap());

    let path = unique_socket("allow2");
    let listen_path = path.clone();
    let listener = std::thread::spawn(move || Bus::listen(&listen_path, 4096));
    let mut tx = Bus::connect_allowing(&path, Some(Duration::from_secs(10)), &[stranger, my_uid()]).unwrap();
    let mut rx = listener.join().unwrap().unwrap();
    tx.send(b"ok", 1).unwrap();
    assert_eq!(rx.recv_timeout(SHORT).unwrap().data(), b"ok");
    assert_eq!(Bus::connect_allowing(&path, None, &[0; 17]).err().map(|e| e.kind()), Some(ErrorKind::InvalidSize));
}

#[test]
fn stats_count_a_known_stream_exactly() {
    let (mut rx, mut tx) = pair("stats", 1 << 16);
    for i in 0..100u32 {
        tx.send(&vec![7u8; (i % 5) as usize * 10], 1).unwrap();
    }
    let sent: u64 = (0..100u64).map(|i| (i % 5) * 10).sum();
    let mut got = 0u64;
    for _ in 0..60 {
        got += rx.recv().unwrap().data().len() as u64;
    }
    let p = tx.stats().unwrap();
    assert_eq!((p.messages_sent, p.bytes_sent, p.messages_received), (100, sent, 0));
    assert_eq!(p.capacity, 1 << 16);
    assert!(p.peer_alive && p.peer_pid == std::process::id() as i32);
    let c = rx.stats().unwrap();
    assert_eq!((c.messages_received, c.bytes_received), (60, got));
    assert_eq!(c.lag_messages, 40);
    assert_eq!(c.state, State::Ready);
}
