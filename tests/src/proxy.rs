//! A fault-injecting TCP proxy for link tests: one node talks to another through it, and the
//! test cuts, heals or slows the link between them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy on 127.0.0.1 in front of one upstream address, whose link a test can cut, heal or slow.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    // Bumped to drop every open connection; dropping it (with the proxy) drops them too,
    // because every connection task stops once the sender is gone.
    generation: watch::Sender<u64>,
    accept_loop: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: Mutex<SocketAddr>,
    cut: AtomicBool,
    delay_nanos: AtomicU64,
    connections: AtomicU64,
}

impl FaultProxy {
    /// Starts listening on 127.0.0.1:0 and forwarding to `upstream` (e.g. "127.0.0.1:8001").
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port for the proxy");
        let addr = listener.local_addr().expect("the proxy's bound address");
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            cut: AtomicBool::new(false),
            delay_nanos: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let (generation, generation_rx) = watch::channel(0u64);
        let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&shared), generation_rx));
        FaultProxy {
            addr,
            shared,
            generation,
            accept_loop,
        }
    }

    /// The proxy's own address (what the client side should connect to).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the upstream (the upstream node restarted on a new port); existing connections are dropped.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
        self.drop_connections();
    }

    /// Cuts the link: open connections are dropped at once and new ones are closed on accept until [`FaultProxy::heal`].
    pub fn cut(&self) {
        // The flag goes first so a connection that starts watching after the bump below
        // still sees the cut when it checks the flag.
        self.shared.cut.store(true, Ordering::SeqCst);
        self.drop_connections();
    }

    /// Heals the link: new connections are forwarded again.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }

    /// Adds this delay before forwarding each chunk of bytes in either direction (`Duration::ZERO` for none); applies to connections opened afterwards.
    pub fn set_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.shared.delay_nanos.store(nanos, Ordering::SeqCst);
    }

    /// Number of connections accepted so far, including those closed because the link was cut.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    fn drop_connections(&self) {
        self.generation.send_modify(|generation| *generation += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
        // Dropping `generation` right after this ends every connection task.
        self.drop_connections();
    }
}

/// A poisoned lock only means another test thread panicked; the address inside is still valid.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, generation: watch::Receiver<u64>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Usually out of file descriptors: back off rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let mut generation = generation.clone();
        // Marked seen before the cut check below, so a cut between the two still wakes
        // `changed()` and one before it is caught by the check.
        generation.mark_unchanged();
        if shared.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let upstream = *lock(&shared.upstream);
        let delay = Duration::from_nanos(shared.delay_nanos.load(Ordering::SeqCst));
        tokio::spawn(async move {
            tokio::select! {
                // Ok: cut or new upstream; Err: the proxy is gone. Either way the streams
                // are dropped here, closing both sockets.
                _ = generation.changed() => {}
                _ = forward(client, upstream, delay) => {}
            }
        });
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, delay: Duration) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        // Dropping the client closes it, which is what a refused upstream looks like.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if delay.is_zero() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let _ = tokio::try_join!(
        pump(client_read, server_write, delay),
        pump(server_read, client_write, delay),
    );
}

/// Copies one direction, sleeping `delay` before each chunk, and passes EOF on as a shutdown.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    delay: Duration,
) -> std::io::Result<()> {
    let mut chunk = Vec::with_capacity(16 * 1024);
    loop {
        chunk.clear();
        if from.read_buf(&mut chunk).await? == 0 {
            return to.shutdown().await;
        }
        tokio::time::sleep(delay).await;
        to.write_all(&chunk).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A server that echoes every byte back on every connection.
    async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let addr = listener.local_addr().expect("echo address");
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        (addr, task)
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(message).await?;
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no echo"))??;
        Ok(echoed)
    }

    async fn echoes(proxy: &FaultProxy) -> bool {
        let Ok(mut stream) = TcpStream::connect(proxy.addr()).await else {
            return false;
        };
        matches!(round_trip(&mut stream, b"ping").await, Ok(echoed) if echoed == b"ping")
    }

    /// Whether the stream reports EOF or an error within a second (rather than hanging).
    async fn closed_within_a_second(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    #[tokio::test]
    async fn forwards_bytes_both_ways() {
        let (upstream, _echo) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await;
        assert_eq!(
            proxy.url(),
            format!("http://127.0.0.1:{}", proxy.addr().port())
        );
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(round_trip(&mut stream, &big).await.expect("echo"), big);
        assert_eq!(proxy.connections(), 1);
    }

    #[tokio::test]
    async fn cut_drops_connections_and_heal_restores_them() {
        let (upstream, _echo) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await;
        let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
        round_trip(&mut open, b"before")
            .await
            .expect("echo before the cut");

        proxy.cut();
        assert!(proxy.is_cut());
        assert!(
            closed_within_a_second(&mut open).await,
            "open connection survived the cut"
        );
        let mut fresh = TcpStream::connect(proxy.addr())
            .await
            .expect("the proxy still accepts while cut");
        let _ = fresh.write_all(b"hello").await;
        assert!(
            closed_within_a_second(&mut fresh).await,
            "new connection was forwarded while cut"
        );
        assert!(!echoes(&proxy).await);

        proxy.heal();
        assert!(!proxy.is_cut());
        assert!(echoes(&proxy).await, "no echo after heal");
    }

    #[tokio::test]
    async fn set_upstream_switches_to_the_new_server() {
        let (first, _echo_first) = echo_server().await;
        let (second, echo_second) = echo_server().await;
        let proxy = FaultProxy::start(first).await;
        let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
        round_trip(&mut open, b"first")
            .await
            .expect("echo from the first server");

        proxy.set_upstream(second);
        assert!(
            closed_within_a_second(&mut open).await,
            "old connection survived the switch"
        );
        assert!(echoes(&proxy).await, "no echo from the second server");

        // Proves the traffic really goes to the second server.
        echo_second.abort();
        let _ = echo_second.await;
        assert!(!echoes(&proxy).await);
    }

    #[tokio::test]
    async fn delay_slows_a_round_trip() {
        let (upstream, _echo) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await;
        let delay = Duration::from_millis(100);
        proxy.set_delay(delay);
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        let started = Instant::now();
        round_trip(&mut stream, b"slow").await.expect("echo");
        // Once each way; only a lower bound, as a loaded machine may be slower still.
        assert!(
            started.elapsed() >= 2 * delay,
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn drop_closes_open_connections() {
        let (upstream, _echo) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await;
        let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
        round_trip(&mut open, b"x").await.expect("echo");
        drop(proxy);
        assert!(closed_within_a_second(&mut open).await);
    }
}
