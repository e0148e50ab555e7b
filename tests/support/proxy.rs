//! A TCP proxy in front of PostgreSQL that a test can cut and restore, standing in for a
//! database server that goes away (a restart, a failover).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A TCP proxy in front of PostgreSQL that the test can cut and restore, standing in for
/// a database server that goes away.
pub struct Proxy {
    pub listen: SocketAddr,
    upstream: SocketAddr,
    tasks: JoinSet<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Proxy {
            listen: listener.local_addr().unwrap(),
            upstream,
            tasks: JoinSet::new(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&mut self) {
        self.tasks.abort_all();
    }

    pub async fn restore(&mut self) {
        while self.tasks.join_next().await.is_some() {}
        let listener = TcpListener::bind(self.listen)
            .await
            .expect("rebind the proxy port");
        self.serve(listener);
    }
}

/// A PostgreSQL URL split around its host and port.
pub struct UrlParts {
    prefix: String,
    pub addr: SocketAddr,
    suffix: String,
}

pub fn url_parts(url: &str) -> UrlParts {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = authority
        .rsplit_once('@')
        .map_or(("", authority), |(u, h)| (u, h));
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    let hostport = hostport.replace("localhost", "127.0.0.1");
    UrlParts {
        prefix: if userinfo.is_empty() {
            format!("{scheme}://")
        } else {
            format!("{scheme}://{userinfo}@")
        },
        addr: hostport
            .parse()
            .expect("DATABASE_URL host must be an IP address or localhost"),
        suffix: format!("/{path}"),
    }
}

impl std::fmt::Display for UrlParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.prefix, self.addr, self.suffix)
    }
}
