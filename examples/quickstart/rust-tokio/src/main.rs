//! The quick start's consumer on a tokio runtime: `quickstart-tokio SOCKET_PATH`
//! receives messages until the producer closes the bus, or until Ctrl-C,
//! whichever comes first. Start it first: it creates the socket.
use tachyon::{AsyncBus, ErrorKind};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: quickstart-tokio SOCKET_PATH")?;
    let mut bus = AsyncBus::listen(&path, 1 << 20).await?; // waits for one producer
    let mut count = 0;
    loop {
        tokio::select! {
            msg = bus.recv() => match msg {
                // Read in place; the slot is released when `msg` is dropped.
                Ok(msg) => println!("type {}: {}", msg.type_id(), String::from_utf8_lossy(msg.data())),
                Err(e) if e.kind() == ErrorKind::PeerClosed => break,
                Err(e) => return Err(e.into()), // PeerDead: the producer crashed
            },
            _ = tokio::signal::ctrl_c() => return Err("interrupted".into()),
        }
        count += 1;
    }
    println!("received {count} messages; the producer closed the bus");
    Ok(())
}
