//! A TCP proxy on 127.0.0.1 that a test can cut and restore, to put a store
//! or a database out of reach and back.

use std::net::SocketAddr;

use reqwest::Url;
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards both ways.
    Open,
    /// Closes every connection, and each new one as soon as it is accepted:
    /// the server is down.
    Cut,
    /// Keeps connections open but forwards nothing, swallowing what clients
    /// send: a network that drops packets. Only timeouts end a request. When
    /// the mode changes, these connections are closed: their byte streams
    /// are broken.
    Stall,
}

/// The proxy; it runs until the test's runtime ends.
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    /// Starts a proxy in front of the host and port of `url`.
    pub async fn start(url: &str) -> Self {
        let upstream = upstream_of(url).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Open);
        let modes = mode.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let now = *modes.borrow();
                let modes = modes.subscribe();
                match now {
                    Mode::Open => {
                        tokio::spawn(forward(inbound, upstream, modes));
                    }
                    Mode::Cut => drop(inbound),
                    Mode::Stall => {
                        tokio::spawn(swallow(inbound, modes));
                    }
                }
            }
        });
        Self { addr, mode }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        let mut url = Url::parse(url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn upstream_of(url: &str) -> SocketAddr {
    let url = Url::parse(url).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let port = url.port().unwrap_or(match url.scheme() {
        "redis" => 6379,
        _ => 5432,
    });
    tokio::net::lookup_host((host, port))
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// Pipes `inbound` to `upstream` until either side closes or the mode leaves
/// `Open`.
async fn forward(mut inbound: TcpStream, upstream: SocketAddr, mut modes: watch::Receiver<Mode>) {
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let stopped = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
        mode = modes.wait_for(|mode| *mode != Mode::Open) => mode.map(|mode| *mode),
    };
    drop(outbound);
    if stopped.is_ok_and(|mode| mode == Mode::Stall) {
        swallow(inbound, modes).await;
    }
}

/// Reads and discards what the client sends, answering nothing, until the
/// mode leaves `Stall`; then closes the connection.
async fn swallow(mut inbound: TcpStream, mut modes: watch::Receiver<Mode>) {
    let mut sink = [0_u8; 4096];
    let read_forever = async {
        while inbound.read(&mut sink).await.is_ok_and(|read| read > 0) {}
        // The client closed; wait for the mode to change all the same.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = read_forever => {}
        _ = modes.wait_for(|mode| *mode != Mode::Stall) => {}
    }
}
