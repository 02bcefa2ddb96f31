//! tympan-sfu: the room server. The only tympan crate with I/O: it owns the sockets (one UDP
//! port for every peer, one ICE-TCP port, the HTTP/WebSocket port), the clock and the tokio
//! runtime, and drives the sans-IO [`tympan_rtc_engine::Engine`] from a single task.
//!
//! - `GET /` (and `/room/<name>`) serves the web room, `GET /ws` the JSON signalling of
//!   `docs/signalling.md`, `GET /healthz` a JSON status, `GET /api/rooms` the rooms,
//!   `GET /api/rooms/<room>` one room in detail (participants, tracks, per-peer RTT, loss,
//!   jitter, bit rates) and `GET /metrics` Prometheus metrics (see the crate README).
//! - `POST /whip/<room>` and `POST /whep/<room>` (RFC 9725 WHIP and the WHEP draft): publish
//!   into or watch a room with one HTTP offer/answer (see the crate README).
//! - Configuration: [`Config`] from flags, `TYMPAN_*` variables and a TOML file
//!   ([`Config::from_cli`]), or built in code.
//!
//! Start a server on ephemeral loopback ports and stop it:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = tympan_sfu::Server::bind(tympan_sfu::Config::ephemeral()).await?;
//! let addrs = server.local_addrs();
//! assert_ne!(addrs.http.port(), 0);
//! println!("open {}", server.url());
//! // Runs until the future resolves (in a real program: Ctrl-C, see `run`).
//! server.run_until(async {}).await?;
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod protocol;
pub mod token;

mod actor;
mod http;
mod media;
mod metrics;
mod whip;
mod ws;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use tympan_rtc_engine::{Engine, EngineConfig};

pub use config::{Config, ConfigError};

use actor::{Actor, EngineHandle};
use media::{TcpEvent, UdpMedia};

/// How long shutdown waits for WebSockets to say `bye` and for HTTP to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The addresses a [`Server`] is bound to (useful with port 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddrs {
    /// HTTP: web room, `/ws`, `/healthz`.
    pub http: SocketAddr,
    /// The UDP media socket.
    pub udp: SocketAddr,
    /// The ICE-TCP media listener.
    pub tcp: SocketAddr,
}

/// Why the server could not start or run.
#[derive(Debug)]
pub enum ServerError {
    /// A socket could not be bound.
    Bind {
        /// Which one: `http`, `udp` or `tcp`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The DTLS certificate could not be generated.
    Certificate(String),
    /// The engine refused the configuration.
    Engine(String),
    /// The HTTP server failed.
    Http(std::io::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Bind { what, addr, error } => {
                write!(f, "cannot bind the {what} socket on {addr}: {error}")
            }
            ServerError::Certificate(e) => write!(f, "cannot generate the DTLS certificate: {e}"),
            ServerError::Engine(e) => write!(f, "cannot start the engine: {e}"),
            ServerError::Http(e) => write!(f, "HTTP server failed: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// A bound, not yet running server. [`Server::bind`], then [`Server::run_until`].
pub struct Server {
    http: TcpListener,
    tcp: TcpListener,
    local: LocalAddrs,
    advertised: Vec<SocketAddr>,
    actor: Actor,
    handle: EngineHandle,
    tcp_tx: mpsc::Sender<TcpEvent>,
    access: Option<token::Verifier>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local)
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the HTTP, UDP and TCP sockets, generates the DTLS certificate and creates the
    /// engine. Nothing is served until [`Server::run_until`].
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let udp = UdpMedia::bind(config.udp).map_err(|error| ServerError::Bind {
            what: "udp",
            addr: config.udp,
            error,
        })?;
        let tcp = TcpListener::bind(config.tcp)
            .await
            .map_err(|error| ServerError::Bind {
                what: "tcp",
                addr: config.tcp,
                error,
            })?;
        let http = TcpListener::bind(config.http)
            .await
            .map_err(|error| ServerError::Bind {
                what: "http",
                addr: config.http,
                error,
            })?;
        let local_of = |l: &TcpListener, what, addr| {
            l.local_addr()
                .map_err(|error| ServerError::Bind { what, addr, error })
        };
        let local = LocalAddrs {
            http: local_of(&http, "http", config.http)?,
            udp: udp.local,
            tcp: local_of(&tcp, "tcp", config.tcp)?,
        };
        let certificate = tympan_dtls::DtlsCertificate::generate()
            .map_err(|e| ServerError::Certificate(e.to_string()))?;
        let mut engine_config = EngineConfig::new(certificate);
        engine_config.udp_addrs = config
            .advertised_ips(local.udp.ip())
            .into_iter()
            .map(|ip| SocketAddr::new(ip, local.udp.port()))
            .collect();
        engine_config.tcp_addrs = config
            .advertised_ips(local.tcp.ip())
            .into_iter()
            .map(|ip| SocketAddr::new(ip, local.tcp.port()))
            .collect();
        engine_config.max_room_size = config.max_room_size;
        engine_config.chat_history = config.chat_history;
        engine_config.last_n = config.last_n;
        engine_config.last_n_threshold = config.last_n_threshold;
        engine_config.seed = rand::random();
        engine_config.secret_seed = rand::random();
        engine_config.resume_grace = config.resume_grace;
        let advertised = engine_config
            .udp_addrs
            .iter()
            .chain(&engine_config.tcp_addrs)
            .copied()
            .collect();
        let engine = Engine::new(engine_config, Instant::now())
            .map_err(|e| ServerError::Engine(format!("{e:?}")))?;
        let (tcp_tx, tcp_rx) = mpsc::channel(1024);
        let (actor, handle) = Actor::new(engine, udp, tcp_rx);
        Ok(Server {
            http,
            tcp,
            local,
            advertised,
            actor,
            handle,
            tcp_tx,
            access: config.access,
        })
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> LocalAddrs {
        self.local
    }

    /// The media addresses advertised in ICE candidates (UDP first, then TCP).
    pub fn advertised_addrs(&self) -> &[SocketAddr] {
        &self.advertised
    }

    /// The URL of the web room.
    pub fn url(&self) -> String {
        let http = self.local.http;
        if http.ip().is_unspecified() {
            format!("http://127.0.0.1:{}/", http.port())
        } else {
            format!("http://{http}/")
        }
    }

    /// Serves until `shutdown` resolves, then shuts down cleanly: every peer's DTLS
    /// close_notify is sent, every WebSocket gets `bye {reason: "shutdown"}` and is closed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Server {
            http,
            tcp,
            actor,
            handle,
            tcp_tx,
            access,
            ..
        } = self;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let actor_task = tokio::spawn(actor.run());
        let tcp_task = tokio::spawn(media::tcp_accept_loop(tcp, tcp_tx));
        let app = http::router(ws::SocketContext {
            engine: handle.clone(),
            shutdown: shutdown_rx,
            alive: alive_tx,
            metrics: std::sync::Arc::new(metrics::Metrics::default()),
            access: access.map(std::sync::Arc::new),
        });
        let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut http_task = tokio::spawn(
            axum::serve(
                http,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = http_stopped.await;
            })
            .into_future(),
        );
        let http_result = tokio::select! {
            () = shutdown => None,
            r = &mut http_task => Some(r),
        };
        if let Some(r) = http_result {
            // The HTTP server ended on its own: that is an error.
            handle.shutdown().await;
            tcp_task.abort();
            return match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ServerError::Http(e)),
                Err(e) => Err(ServerError::Http(std::io::Error::other(e.to_string()))),
            };
        }
        info!("shutting down");
        handle.shutdown().await;
        let _ = shutdown_tx.send(true);
        let _ = stop_http.send(());
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut http_task)
            .await
            .is_err()
        {
            warn!("HTTP connections still open after the grace period");
            http_task.abort();
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv())
            .await
            .is_err()
        {
            warn!("some WebSockets did not close in time");
        }
        tcp_task.abort();
        let _ = actor_task.await;
        info!("stopped");
        Ok(())
    }
}

/// Installs a `tracing` subscriber printing to stderr with the given filter (a level such
/// as `info`, or `target=level` pairs such as `info,tympan_rtc_engine=debug`).
pub fn init_logging(filter: &str) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let targets: tracing_subscriber::filter::Targets = filter
        .parse()
        .map_err(|e| format!("bad log filter {filter:?}: {e}"))?;
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // The builder's own default is INFO: open it fully and let `targets` decide.
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .finish()
        .with(targets)
        .try_init()
        .map_err(|e| e.to_string())
}

/// What `examples/sfu.rs` does: configuration from the command line, logs, bind, print the
/// URL, serve until Ctrl-C (or SIGTERM), shut down cleanly.
pub async fn run_from_cli() -> Result<(), Box<dyn std::error::Error>> {
    let config = match Config::command_from_args(std::env::args_os()) {
        Ok(config::Command::Serve(c)) => c,
        Ok(config::Command::MintToken { config, request }) => {
            // `sfu token …`: print a token and exit.
            let Some(verifier) = config.access else {
                return Err("token needs --api-key and --api-secret".into());
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            println!(
                "{}",
                verifier.sign(&request.claims(verifier.api_key(), now))
            );
            return Ok(());
        }
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => return Err(e.into()),
    };
    init_logging(&config.log)?;
    let server = Server::bind(config).await?;
    let addrs = server.local_addrs();
    info!(
        http = %addrs.http,
        udp = %addrs.udp,
        tcp = %addrs.tcp,
        advertised = ?server.advertised_addrs(),
        "tympan-sfu ready: open {} in two browser tabs",
        server.url()
    );
    server.run_until(shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
