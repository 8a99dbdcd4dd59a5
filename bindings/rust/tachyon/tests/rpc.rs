//! Request/reply through the safe API: calls and replies (copied and in
//! place), pipelining and its order, timeouts and abandoned calls, the server
//! loop with error replies, and the peer's end (a clean close, a killed
//! client or server: this test binary re-runs itself as the other process).

mod common;

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::unique_socket;
use tachyon::{ErrorKind, PollingMode, RpcClient, RpcServer, State, MSG_TYPE_ERROR};

const CHILD_ENV: &str = "TACHYON_RPC_TEST_CHILD_SOCKET";
const LONG: Duration = Duration::from_secs(10);
/// The user's bound: a wait learns that its peer died within this long.
const DEATH_BOUND: Duration = Duration::from_millis(250);

/// (server, client) connected in this process; the server listened in a thread.
fn rpc_pair(tag: &str, cap_fwd: usize, cap_rev: usize) -> (RpcServer, RpcClient) {
    let path = unique_socket(tag);
    let listen_path = path.clone();
    let server = thread::spawn(move || RpcServer::listen(&listen_path, cap_fwd, cap_rev));
    let client = RpcClient::connect_timeout(&path, Some(LONG)).expect("connect");
    (server.join().unwrap().expect("listen"), client)
}

#[test]
fn calls_get_their_replies() {
    let (mut server, mut client) = rpc_pair("rpc-calls", 4096, 4096);
    let echo = thread::spawn(move || {
        server
            .run(1024, |msg_type, request, reply| {
                reply[..request.len()].copy_from_slice(request);
                reply[..request.len()].reverse();
                reply[request.len()] = msg_type as u8;
                Some(request.len() + 1)
            })
            .map(|()| server.state())
    });
    for i in 0..200u32 {
        let reply = client.call(i % 7, &i.to_le_bytes()).unwrap();
        let mut want = i.to_be_bytes().to_vec();
        want.push((i % 7) as u8);
        assert_eq!(&reply[..], &want[..]);
        assert_eq!(reply.msg_type(), (i % 7) as u16); // the request's type, as the loop replies
        assert_eq!(reply.correlation_id(), u64::from(i) + 1);
    }
    // In place: the request written into shared memory by a closure.
    let reply = client
        .call_with(3, 16, Some(LONG), |buf| {
            buf[..4].copy_from_slice(b"abcd");
            4
        })
        .unwrap();
    assert_eq!(&reply[..], b"dcba\x03");
    reply.commit().unwrap();
    drop(client);
    // The loop ends cleanly once the client closed.
    assert_eq!(echo.join().unwrap().unwrap(), State::Disconnected);
}

#[test]
fn pipelined_calls_and_the_order_of_waits() {
    let (mut server, mut client) = rpc_pair("rpc-pipe", 1 << 14, 1 << 14);
    let ids: Vec<u64> = (0..20u8).map(|i| client.send(1, &[i]).unwrap()).collect();
    assert_eq!(ids, (1..=20).collect::<Vec<u64>>());
    for i in 0..20u8 {
        let request = server.serve(Some(LONG)).unwrap();
        assert_eq!((request.data(), request.correlation_id()), (&[i][..], u64::from(i) + 1));
        request.reply(9, &[i, i], None).unwrap();
    }
    let err = client.wait(ids[1], Some(LONG)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongReply);
    assert!(err.to_string().contains("answers call 1, not 2"), "{err}");
    assert_eq!(client.state(), State::Ready);
    for (i, id) in ids.iter().enumerate() {
        let reply = client.wait(*id, Some(LONG)).unwrap();
        assert_eq!((&reply[..], reply.msg_type()), (&[i as u8, i as u8][..], 9));
    }
}

#[test]
fn timeouts_and_abandoned_calls() {
    let (mut server, mut client) = rpc_pair("rpc-timeout", 4096, 4096);
    let t0 = Instant::now();
    assert_eq!(server.serve(Some(Duration::from_millis(50))).unwrap_err().kind(), ErrorKind::Timeout);
    assert!(t0.elapsed() >= Duration::from_millis(49));
    // Nobody serves yet: the call times out and is abandoned.
    let err = client.call_timeout(1, b"late", Duration::from_millis(50)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    let request = server.serve(Some(LONG)).unwrap();
    request.reply(1, b"too late", None).unwrap();
    let server = thread::spawn(move || {
        let request = server.serve(Some(LONG)).unwrap();
        request.reply(1, b"in time", None).unwrap();
        server
    });
    // The abandoned call's reply is dropped on the way to this one's.
    assert_eq!(&client.call(1, b"now").unwrap()[..], b"in time");
    // A plain wait that times out leaves the call in flight.
    let mut server = server.join().unwrap();
    let id = client.send(1, b"q").unwrap();
    assert_eq!(client.wait(id, Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::Timeout);
    server.serve(Some(LONG)).unwrap().reply(2, b"r", None).unwrap();
    assert_eq!(&client.wait(id, Some(LONG)).unwrap()[..], b"r");
    assert_eq!(client.abandon(99).unwrap_err().kind(), ErrorKind::InvalidSize);
}

#[test]
fn refused_requests_get_error_replies() {
    let (mut server, mut client) = rpc_pair("rpc-errors", 4096, 4096);
    let loop_thread = thread::spawn(move || {
        server.run(64, |msg_type, request, reply| match msg_type {
            1 => {
                reply[..request.len()].copy_from_slice(request);
                Some(request.len())
            }
            2 => Some(65), // more than the slot: refused
            _ => None,
        })
    });
    assert_eq!(&client.call(1, b"ok").unwrap()[..], b"ok");
    for msg_type in [2u32, 7] {
        let err = client.call(msg_type, b"?").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ErrorReply);
        assert!(err.to_string().contains(&format!("msg_type {msg_type}")), "{err}");
    }
    // On the wire: type 0xFFFF, the request's type in 2 bytes big-endian.
    let id = client.send(0x1234, b"").unwrap();
    let reply = client.wait(id, Some(LONG)).unwrap();
    assert_eq!((reply.msg_type(), &reply[..]), (MSG_TYPE_ERROR, &[0x12, 0x34][..]));
    drop(reply);
    drop(client);
    loop_thread.join().unwrap().unwrap();
}

#[test]
fn full_rings_and_sizes() {
    let (mut server, mut client) = rpc_pair("rpc-full", 1024, 1024);
    for _ in 0..8 {
        client.send(1, b"0123456789").unwrap();
    }
    assert_eq!(client.send(1, b"x").unwrap_err().kind(), ErrorKind::Full);
    assert_eq!(client.max_request(), 1024 - 64);
    assert_eq!(client.send(1, &[0; 1024]).unwrap_err().kind(), ErrorKind::InvalidSize);
    let err = client.call_with(1, 8, Some(Duration::from_millis(20)), |_| 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout); // no room came
    drop(server.serve(None).unwrap());
    let err = client.send_with_timeout(1, 8, Some(LONG), |_| 9).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize);
    assert_eq!(server.reply(0, 1, b"x", None).unwrap_err().kind(), ErrorKind::InvalidSize);
}

#[test]
fn large_messages_on_small_rings_never_stall() {
    let (mut server, mut client) = rpc_pair("rpc-large", 4096, 4096);
    server.set_polling_mode(PollingMode::PureSpin);
    let echo = thread::spawn(move || {
        server.run(4032, |_, request, reply| {
            reply[..request.len()].copy_from_slice(request);
            Some(request.len())
        })
    });
    for i in 0..1000usize {
        let request = vec![(i % 251) as u8; [1000, 2000, 4032, 3000][i % 4]];
        let reply = client.call_timeout(1, &request, LONG).unwrap();
        assert_eq!(&reply[..], &request[..]);
    }
    drop(client);
    echo.join().unwrap().unwrap();
}

#[test]
fn rpc_handles_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<RpcClient>();
    assert_send::<RpcServer>();
}

// ---- two processes ------------------------------------------------------------

fn spawn_child(test_name: &str, socket: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the child")
}

fn child_socket() -> Option<std::path::PathBuf> {
    std::env::var_os(CHILD_ENV).map(Into::into)
}

#[test]
fn child_server_answers_two_then_hangs() {
    let Some(path) = child_socket() else { return };
    let mut server = RpcServer::listen(&path, 4096, 4096).expect("child: listen");
    for _ in 0..2 {
        server.serve(None).unwrap().reply(1, b"answer", None).unwrap();
    }
    let _held = server.serve(None).unwrap(); // read, never answered
    thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_server_is_peer_dead_after_its_replies() {
    let path = unique_socket("rpc-kill-server");
    let mut child = spawn_child("child_server_answers_two_then_hangs", &path);
    let mut client = RpcClient::connect_timeout(&path, Some(LONG)).unwrap();
    let ids: Vec<u64> = (0..3).map(|_| client.send(1, b"q").unwrap()).collect();
    // The two replies came: the third request is being held.
    for id in &ids[..2] {
        assert_eq!(&client.wait(*id, Some(LONG)).unwrap()[..], b"answer");
    }
    thread::sleep(Duration::from_millis(50));
    child.kill().unwrap();
    let t0 = Instant::now();
    let err = client.wait(ids[2], None).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.kind(), ErrorKind::PeerDead, "{err}");
    assert!(took < DEATH_BOUND, "learned of the death after {took:?}");
    child.wait().unwrap();
}

#[test]
fn child_client_calls_three_then_waits() {
    let Some(path) = child_socket() else { return };
    let mut client = RpcClient::connect_timeout(&path, Some(LONG)).expect("child: connect");
    let mut last = 0;
    for i in 0..3u8 {
        last = client.send(1, &[i]).unwrap();
    }
    let _ = client.wait(last, None); // killed here
}

#[test]
fn a_killed_client_is_peer_dead_after_its_requests() {
    let path = unique_socket("rpc-kill-client");
    let mut child = spawn_child("child_client_calls_three_then_waits", &path);
    let mut server = RpcServer::listen(&path, 4096, 4096).unwrap();
    let first = server.serve(Some(LONG)).unwrap();
    assert_eq!(first.data(), [0]);
    drop(first);
    thread::sleep(Duration::from_millis(50)); // the other two are in by now
    child.kill().unwrap();
    let t0 = Instant::now();
    for i in 1..3u8 {
        assert_eq!(server.serve(None).unwrap().data(), [i]); // every request it sent
    }
    let err = server.serve(None).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.kind(), ErrorKind::PeerDead, "{err}");
    assert!(took < DEATH_BOUND, "learned of the death after {took:?}");
    // The loop helper reports the same.
    assert_eq!(server.run(8, |_, _, _| Some(0)).unwrap_err().kind(), ErrorKind::PeerDead);
    child.wait().unwrap();
}
