//! The Rust declarations against the C header: struct sizes and offsets, the
//! error and state codes, the type-id macros (all evaluated by the C compiler
//! in csrc/layout_probe.c), and that every function the header exports is
//! declared here and links.

use std::ffi::{c_char, c_int, CString};
use std::mem::{offset_of, size_of};
use tachyon_sys::*;

#[link(name = "tachyon_sys_layout_probe", kind = "static")]
extern "C" {
    fn tachyon_sys_probe(name: *const c_char, found: *mut c_int) -> i64;
    fn tachyon_sys_probe_type_id(route: u32, msg_type: u32) -> u32;
    fn tachyon_sys_probe_route_id(id: u32) -> u32;
    fn tachyon_sys_probe_msg_type(id: u32) -> u32;
}

/// The value C gives for `expr`, spelled as in the probe table.
fn c_value(expr: &str) -> i64 {
    let name = CString::new(expr).unwrap();
    let mut found = 0;
    // SAFETY: name is NUL-terminated and found a valid out-pointer.
    let value = unsafe { tachyon_sys_probe(name.as_ptr(), &mut found) };
    assert_eq!(found, 1, "layout_probe.c has no entry for {expr}");
    value
}

fn check(expr: &str, rust: usize) {
    assert_eq!(c_value(expr), rust as i64, "{expr}: C and Rust disagree");
}

#[test]
fn fan_msg_matches_c() {
    check("sizeof(tachyon_fan_msg_t)", size_of::<tachyon_fan_msg_t>());
    check("offsetof(tachyon_fan_msg_t, size)", offset_of!(tachyon_fan_msg_t, size));
    check("offsetof(tachyon_fan_msg_t, type_id)", offset_of!(tachyon_fan_msg_t, type_id));
    check("offsetof(tachyon_fan_msg_t, producer)", offset_of!(tachyon_fan_msg_t, producer));
    check("offsetof(tachyon_fan_msg_t, pid)", offset_of!(tachyon_fan_msg_t, pid));
    check("offsetof(tachyon_fan_msg_t, seq)", offset_of!(tachyon_fan_msg_t, seq));
}

#[test]
fn segment_info_matches_c() {
    check("sizeof(tachyon_side_info_t)", size_of::<tachyon_side_info_t>());
    check("sizeof(tachyon_segment_info_t)", size_of::<tachyon_segment_info_t>());
    check("offsetof(tachyon_segment_info_t, producer)", offset_of!(tachyon_segment_info_t, producer));
    check("offsetof(tachyon_segment_info_t, consumer)", offset_of!(tachyon_segment_info_t, consumer));
    check("offsetof(tachyon_side_info_t, active_ns)", offset_of!(tachyon_side_info_t, active_ns));
}

#[test]
fn stats_matches_c() {
    check("sizeof(tachyon_stats_t)", size_of::<tachyon_stats_t>());
    check("offsetof(tachyon_stats_t, lag_messages)", offset_of!(tachyon_stats_t, lag_messages));
    check("offsetof(tachyon_stats_t, idle_ns)", offset_of!(tachyon_stats_t, idle_ns));
    check("offsetof(tachyon_stats_t, peer_pid)", offset_of!(tachyon_stats_t, peer_pid));
    check("offsetof(tachyon_stats_t, state)", offset_of!(tachyon_stats_t, state));
}

#[test]
fn msg_view_matches_c() {
    check("sizeof(tachyon_msg_view_t)", size_of::<tachyon_msg_view_t>());
    assert_eq!(size_of::<tachyon_msg_view_t>(), 32, "the published ABI says 32 bytes");
    check("offsetof(tachyon_msg_view_t, ptr)", offset_of!(tachyon_msg_view_t, ptr));
    check("offsetof(tachyon_msg_view_t, actual_size)", offset_of!(tachyon_msg_view_t, actual_size));
    check("offsetof(tachyon_msg_view_t, reserved_)", offset_of!(tachyon_msg_view_t, reserved_));
    check("offsetof(tachyon_msg_view_t, type_id)", offset_of!(tachyon_msg_view_t, type_id));
    check("offsetof(tachyon_msg_view_t, padding_)", offset_of!(tachyon_msg_view_t, padding_));
}

#[test]
fn listen_opts_match_c() {
    check("sizeof(tachyon_listen_opts_t)", size_of::<tachyon_listen_opts_t>());
    check("offsetof(tachyon_listen_opts_t, capacity)", offset_of!(tachyon_listen_opts_t, capacity));
    check("offsetof(tachyon_listen_opts_t, timeout_ms)", offset_of!(tachyon_listen_opts_t, timeout_ms));
    check("offsetof(tachyon_listen_opts_t, keep_waiting)", offset_of!(tachyon_listen_opts_t, keep_waiting));
    check("offsetof(tachyon_listen_opts_t, n_allowed_uids)", offset_of!(tachyon_listen_opts_t, n_allowed_uids));
    check("offsetof(tachyon_listen_opts_t, allowed_uids)", offset_of!(tachyon_listen_opts_t, allowed_uids));
    check("sizeof(uid_t)", size_of::<uid_t>());
    check("TACHYON_MAX_PUBLISH_BATCH", TACHYON_MAX_PUBLISH_BATCH as usize);
    check("TACHYON_WAIT_RX", TACHYON_WAIT_RX as usize);
    check("TACHYON_WAIT_TX", TACHYON_WAIT_TX as usize);
    check("TACHYON_MAX_ALLOWED_UIDS", TACHYON_MAX_ALLOWED_UIDS);
}

#[test]
fn enums_match_c() {
    check("sizeof(tachyon_error_t)", size_of::<tachyon_error_t>());
    check("sizeof(tachyon_state_t)", size_of::<tachyon_state_t>());
    let codes: &[(&str, u32)] = &[
        ("TACHYON_SUCCESS", TACHYON_SUCCESS),
        ("TACHYON_ERR_NULL_PTR", TACHYON_ERR_NULL_PTR),
        ("TACHYON_ERR_MEM", TACHYON_ERR_MEM),
        ("TACHYON_ERR_OPEN", TACHYON_ERR_OPEN),
        ("TACHYON_ERR_TRUNCATE", TACHYON_ERR_TRUNCATE),
        ("TACHYON_ERR_CHMOD", TACHYON_ERR_CHMOD),
        ("TACHYON_ERR_SEAL", TACHYON_ERR_SEAL),
        ("TACHYON_ERR_MAP", TACHYON_ERR_MAP),
        ("TACHYON_ERR_INVALID_SZ", TACHYON_ERR_INVALID_SZ),
        ("TACHYON_ERR_FULL", TACHYON_ERR_FULL),
        ("TACHYON_ERR_EMPTY", TACHYON_ERR_EMPTY),
        ("TACHYON_ERR_NETWORK", TACHYON_ERR_NETWORK),
        ("TACHYON_ERR_SYSTEM", TACHYON_ERR_SYSTEM),
        ("TACHYON_ERR_INTERRUPTED", TACHYON_ERR_INTERRUPTED),
        ("TACHYON_ERR_ABI_MISMATCH", TACHYON_ERR_ABI_MISMATCH),
        ("TACHYON_ERR_PEER_DEAD", TACHYON_ERR_PEER_DEAD),
        ("TACHYON_ERR_PERMISSION", TACHYON_ERR_PERMISSION),
        ("TACHYON_ERR_FATAL", TACHYON_ERR_FATAL),
        ("TACHYON_ERR_STATE", TACHYON_ERR_STATE),
        ("TACHYON_ERR_TIMEOUT", TACHYON_ERR_TIMEOUT),
        ("TACHYON_ERR_ADDR_IN_USE", TACHYON_ERR_ADDR_IN_USE),
        ("TACHYON_ERR_NOT_SOCKET", TACHYON_ERR_NOT_SOCKET),
        ("TACHYON_ERR_PATH_TOO_LONG", TACHYON_ERR_PATH_TOO_LONG),
        ("TACHYON_ERR_PEER_CLOSED", TACHYON_ERR_PEER_CLOSED),
        ("TACHYON_ERR_FORKED", TACHYON_ERR_FORKED),
        ("TACHYON_ERR_WRONG_REPLY", TACHYON_ERR_WRONG_REPLY),
        ("TACHYON_ERR_OVERRUN", TACHYON_ERR_OVERRUN),
        ("TACHYON_FAN_BLOCK", TACHYON_FAN_BLOCK),
        ("TACHYON_FAN_DROP_SLOW", TACHYON_FAN_DROP_SLOW),
        ("TACHYON_FAN_START_NEWEST", TACHYON_FAN_START_NEWEST),
        ("TACHYON_FAN_START_OLDEST", TACHYON_FAN_START_OLDEST),
        ("TACHYON_STATE_UNINITIALIZED", TACHYON_STATE_UNINITIALIZED),
        ("TACHYON_STATE_INITIALIZING", TACHYON_STATE_INITIALIZING),
        ("TACHYON_STATE_READY", TACHYON_STATE_READY),
        ("TACHYON_STATE_DISCONNECTED", TACHYON_STATE_DISCONNECTED),
        ("TACHYON_STATE_FATAL_ERROR", TACHYON_STATE_FATAL_ERROR),
        ("TACHYON_STATE_UNKNOWN", TACHYON_STATE_UNKNOWN),
    ];
    for &(name, value) in codes {
        check(name, value as usize);
    }
}

#[test]
fn every_header_error_code_has_a_constant() {
    let Some(header) = bundled_header() else { return };
    let rust = include_str!("../src/lib.rs");
    for line in header.lines() {
        let line = line.trim_start();
        let is_code = (line.starts_with("TACHYON_ERR_") || line.starts_with("TACHYON_STATE_")) && line.contains('=');
        if is_code {
            let name = line.split(|c: char| c.is_whitespace() || c == '=').next().unwrap();
            assert!(rust.contains(&format!("pub const {name}:")), "tachyon.h has {name}, lib.rs does not");
        }
    }
}

#[test]
fn type_id_helpers_match_the_macros() {
    for &(route, msg) in &[(0u32, 0u32), (1, 2), (0xFFFF, 0xFFFF), (0x1_2345, 0x6_789A), (7, 0)] {
        // SAFETY: plain arithmetic functions in the probe.
        let c = unsafe { tachyon_sys_probe_type_id(route, msg) };
        assert_eq!(TACHYON_TYPE_ID(route, msg), c, "TACHYON_TYPE_ID({route:#x}, {msg:#x})");
        // SAFETY: as above.
        unsafe {
            assert_eq!(u32::from(TACHYON_ROUTE_ID(c)), tachyon_sys_probe_route_id(c));
            assert_eq!(u32::from(TACHYON_MSG_TYPE(c)), tachyon_sys_probe_msg_type(c));
        }
    }
}

/// The header of this repository, when the crate is built from it.
fn bundled_header() -> Option<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../include/tachyon.h");
    std::fs::read_to_string(path).ok()
}

/// Names of the functions the header exports (`TACHYON_API <type> name(`).
fn header_functions(header: &str) -> Vec<String> {
    // Declarations span lines; join them so each starts with TACHYON_API.
    let flat = header.replace('\n', " ");
    flat.split("TACHYON_API").skip(1)
        .filter_map(|decl| {
            let before_paren = decl.split('(').next()?;
            let name = before_paren.trim().rsplit(|c: char| c.is_whitespace() || c == '*').next()?;
            name.starts_with("tachyon_").then(|| name.to_string())
        })
        .collect()
}

#[test]
fn every_header_function_is_declared() {
    let Some(header) = bundled_header() else { return };
    let rust = include_str!("../src/lib.rs");
    let names = header_functions(&header);
    assert!(names.len() >= 30, "parsed only {} functions from tachyon.h", names.len());
    for name in names {
        assert!(rust.contains(&format!("pub fn {name}(")), "tachyon.h declares {name}, lib.rs does not");
    }
}

#[test]
fn every_declared_function_links() {
    // Taking each address forces the linker to resolve every symbol.
    let addrs: &[*const ()] = &[
        tachyon_bus_listen as *const (),
        tachyon_bus_connect as *const (),
        tachyon_bus_ref as *const (),
        tachyon_bus_destroy as *const (),
        tachyon_bus_set_numa_node as *const (),
        tachyon_bus_set_polling_mode as *const (),
        tachyon_error_message as *const (),
        tachyon_bus_set_publish_batch as *const (),
        tachyon_bus_stats as *const (),
        tachyon_bus_fd as *const (),
        tachyon_segment_inspect as *const (),
        tachyon_bus_fd_arm as *const (),
        tachyon_acquire_tx as *const (),
        tachyon_commit_tx as *const (),
        tachyon_rollback_tx as *const (),
        tachyon_flush as *const (),
        tachyon_acquire_rx as *const (),
        tachyon_acquire_rx_spin as *const (),
        tachyon_acquire_rx_blocking as *const (),
        tachyon_commit_rx as *const (),
        tachyon_acquire_rx_batch as *const (),
        tachyon_drain_batch as *const (),
        tachyon_commit_rx_batch as *const (),
        tachyon_get_state as *const (),
        tachyon_memory_barrier_acquire as *const (),
        tachyon_strerror as *const (),
        tachyon_bus_last_error as *const (),
        tachyon_listen_opts_init as *const (),
        tachyon_listen_opts_allow_uid as *const (),
        tachyon_bus_listen_ex as *const (),
        tachyon_bus_connect_timeout as *const (),
        tachyon_bus_connect_ex as *const (),
        tachyon_acquire_rx_timeout as *const (),
        tachyon_drain_batch_timeout as *const (),
        tachyon_acquire_tx_blocking as *const (),
        tachyon_send as *const (),
        tachyon_send_batch as *const (),
        tachyon_peer_alive as *const (),
        tachyon_bus_capacity as *const (),
        tachyon_bus_max_payload as *const (),
        tachyon_rpc_listen as *const (),
        tachyon_rpc_connect as *const (),
        tachyon_rpc_destroy as *const (),
        tachyon_rpc_ref as *const (),
        tachyon_rpc_call as *const (),
        tachyon_rpc_acquire_tx as *const (),
        tachyon_rpc_commit_call as *const (),
        tachyon_rpc_rollback_call as *const (),
        tachyon_rpc_wait as *const (),
        tachyon_rpc_commit_rx as *const (),
        tachyon_rpc_serve as *const (),
        tachyon_rpc_commit_serve as *const (),
        tachyon_rpc_reply as *const (),
        tachyon_rpc_acquire_reply_tx as *const (),
        tachyon_rpc_commit_reply as *const (),
        tachyon_rpc_rollback_reply as *const (),
        tachyon_rpc_set_polling_mode as *const (),
        tachyon_rpc_get_state as *const (),
        tachyon_rpc_listen_ex as *const (),
        tachyon_rpc_connect_timeout as *const (),
        tachyon_rpc_connect_ex as *const (),
        tachyon_rpc_wait_timeout as *const (),
        tachyon_rpc_serve_timeout as *const (),
        tachyon_rpc_acquire_tx_timeout as *const (),
        tachyon_rpc_acquire_reply_tx_timeout as *const (),
        tachyon_rpc_abandon as *const (),
        tachyon_rpc_last_error as *const (),
        tachyon_rpc_peer_alive as *const (),
        tachyon_rpc_max_request as *const (),
        tachyon_rpc_max_reply as *const (),
        tachyon_fanout_listen as *const (),
        tachyon_fanout_listen_ex as *const (),
        tachyon_fanout_destroy as *const (),
        tachyon_fanout_acquire_tx as *const (),
        tachyon_fanout_commit_tx as *const (),
        tachyon_fanout_rollback_tx as *const (),
        tachyon_fanout_send as *const (),
        tachyon_fanout_consumers as *const (),
        tachyon_fanout_max_payload as *const (),
        tachyon_fanout_last_error as *const (),
        tachyon_fanout_connect as *const (),
        tachyon_fanout_rx_destroy as *const (),
        tachyon_fanout_acquire_rx as *const (),
        tachyon_fanout_commit_rx as *const (),
        tachyon_fanout_missed as *const (),
        tachyon_fanout_missed_total as *const (),
        tachyon_fanout_index as *const (),
        tachyon_fanout_rx_last_error as *const (),
        tachyon_fanin_listen as *const (),
        tachyon_fanin_listen_ex as *const (),
        tachyon_fanin_destroy as *const (),
        tachyon_fanin_acquire_rx as *const (),
        tachyon_fanin_commit_rx as *const (),
        tachyon_fanin_producers as *const (),
        tachyon_fanin_last_error as *const (),
        tachyon_fanin_connect as *const (),
    ];
    assert!(addrs.iter().all(|a| !a.is_null()));
    if let Some(header) = bundled_header() {
        assert_eq!(addrs.len(), header_functions(&header).len(), "a header function is missing from this list");
    }
}

#[test]
fn listen_opts_init_sets_the_documented_defaults() {
    // SAFETY: opts is a plain C struct that the function fills entirely.
    let opts = unsafe {
        let mut opts = std::mem::MaybeUninit::<tachyon_listen_opts_t>::uninit();
        tachyon_listen_opts_init(opts.as_mut_ptr(), 4096);
        opts.assume_init()
    };
    assert_eq!(opts.capacity, 4096);
    assert_eq!(opts.timeout_ms, -1);
    assert_eq!(opts.n_allowed_uids, 0);
}

#[test]
fn strerror_names_peer_death() {
    // SAFETY: tachyon_strerror returns a static NUL-terminated string.
    let msg = unsafe { std::ffi::CStr::from_ptr(tachyon_strerror(TACHYON_ERR_PEER_DEAD)) };
    assert!(msg.to_str().unwrap().contains("peer"), "{msg:?}");
}

/// The request/reply declarations pass their arguments in the header's order:
/// distinct capacities, ids, types and sizes go in through one call and must
/// come out of the other side where the header says they do (serve's outputs
/// are id, type, size; wait's size, type).
#[test]
fn rpc_declarations_pass_arguments_in_the_headers_order() {
    use std::ptr;
    use std::sync::mpsc;

    let path = std::env::temp_dir().join(format!("tachyon-sys-rpc-{}.sock", std::process::id()));
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let (tx, rx) = mpsc::channel::<usize>();
    let listen_path = c_path.clone();
    let server = std::thread::spawn(move || {
        let mut rpc: *mut tachyon_rpc_bus_t = ptr::null_mut();
        // SAFETY: the path is NUL-terminated, rpc a valid out-pointer.
        let rc = unsafe { tachyon_rpc_listen(listen_path.as_ptr(), 1024, 2048, &mut rpc) };
        assert_eq!(rc, TACHYON_SUCCESS);
        let (mut cid, mut msg_type, mut size) = (0u64, 0u32, 0usize);
        // SAFETY: rpc is live; the outputs are valid pointers; the request is
        // read before commit_serve.
        unsafe {
            let req = tachyon_rpc_serve_timeout(rpc, &mut cid, &mut msg_type, &mut size, 100, 10_000);
            assert!(!req.is_null());
            assert_eq!((cid, msg_type, size), (1, 7, 3));
            assert_eq!(std::slice::from_raw_parts(req as *const u8, size), b"abc");
            assert_eq!(tachyon_rpc_commit_serve(rpc), TACHYON_SUCCESS);
            assert_eq!(tachyon_rpc_reply(rpc, cid, b"hello".as_ptr().cast(), 5, 9), TACHYON_SUCCESS);
            tx.send(tachyon_rpc_max_reply(rpc)).unwrap();
            // Wait for the caller to close, then close.
            let gone = tachyon_rpc_serve_timeout(rpc, &mut cid, &mut msg_type, &mut size, 100, 10_000);
            assert!(gone.is_null());
            assert_eq!(tachyon_rpc_last_error(rpc), TACHYON_ERR_PEER_CLOSED);
            tachyon_rpc_destroy(rpc);
        }
    });
    let mut rpc: *mut tachyon_rpc_bus_t = ptr::null_mut();
    // SAFETY: as above.
    unsafe {
        assert_eq!(tachyon_rpc_connect_timeout(c_path.as_ptr(), 10_000, &mut rpc), TACHYON_SUCCESS);
        assert_eq!(tachyon_rpc_max_request(rpc), 1024 - 64); // cap_fwd is the request ring
        assert_eq!(tachyon_rpc_max_reply(rpc), 2048 - 64);
        assert_eq!(tachyon_rpc_get_state(rpc), TACHYON_STATE_READY);
        let mut cid = 0u64;
        assert_eq!(tachyon_rpc_call(rpc, b"abc".as_ptr().cast(), 3, 7, &mut cid), TACHYON_SUCCESS);
        assert_eq!(cid, 1);
        let (mut size, mut msg_type) = (0usize, 0u32);
        let reply = tachyon_rpc_wait_timeout(rpc, cid, &mut size, &mut msg_type, 100, 10_000);
        assert!(!reply.is_null());
        assert_eq!((size, msg_type), (5, 9));
        assert_eq!(std::slice::from_raw_parts(reply as *const u8, size), b"hello");
        assert_eq!(tachyon_rpc_commit_rx(rpc), TACHYON_SUCCESS);
        assert_eq!(rx.recv().unwrap(), 2048 - 64);
        // A wait for a call never made: nothing comes, and the code says so.
        assert!(tachyon_rpc_wait_timeout(rpc, 0, &mut size, &mut msg_type, 0, 0).is_null());
        assert_eq!(tachyon_rpc_last_error(rpc), TACHYON_ERR_TIMEOUT);
        tachyon_rpc_destroy(rpc);
    }
    server.join().unwrap();
}
