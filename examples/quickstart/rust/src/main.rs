//! One program, two roles: `quickstart consumer SOCKET_PATH` receives messages
//! until the producer closes the bus; `quickstart producer SOCKET_PATH` sends
//! five messages, then closes it. Start the consumer first: it creates the socket.
use std::time::Duration;

use tachyon::{Bus, ErrorKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, path] if role == "consumer" => consume(path),
        [_, role, path] if role == "producer" => produce(path),
        _ => Err("usage: quickstart consumer|producer SOCKET_PATH".into()),
    }
}

fn consume(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut bus = Bus::listen(path, 1 << 20)?; // waits for one producer
    let mut count = 0;
    loop {
        match bus.recv() {
            // Read in place; the slot is released when `msg` is dropped.
            Ok(msg) => println!("type {}: {}", msg.type_id(), String::from_utf8_lossy(msg.data())),
            // The producer closed the bus and everything it sent was read.
            Err(e) if e.kind() == ErrorKind::PeerClosed => break,
            // ErrorKind::PeerDead (the producer crashed), or another error;
            // it prints with the library's detail (path, reason, peer pid).
            Err(e) => return Err(e.into()),
        }
        count += 1;
    }
    println!("received {count} messages; the producer closed the bus");
    Ok(())
}

fn produce(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Retries for up to 10 s while the consumer is not listening yet.
    let mut bus = Bus::connect_timeout(path, Some(Duration::from_secs(10)))?;
    for i in 0..5 {
        let mut tx = bus.acquire_tx(64, Some(Duration::from_secs(5)))?; // a slot in the shared ring
        tx.write(format!("hello {i}").as_bytes())?; // written in place
        tx.set_type_id(1);
        tx.commit()?; // visible to the consumer now
    }
    println!("sent 5 messages");
    Ok(()) // dropping the bus closes it: the consumer sees PeerClosed after the last message
}
