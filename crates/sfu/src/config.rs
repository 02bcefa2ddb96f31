//! Server configuration: command-line flags, `TYMPAN_*` environment variables and an optional
//! TOML file, in that order of precedence, over built-in defaults that work on a laptop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

/// Default HTTP (page + WebSocket) address.
pub const DEFAULT_HTTP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Default UDP media address (all peers share it).
pub const DEFAULT_UDP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000);
/// Default ICE-TCP media address (passive candidates).
pub const DEFAULT_TCP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000);
/// Default room size limit.
pub const DEFAULT_MAX_ROOM_SIZE: usize = 50;
/// Default number of last-N audio slots per subscriber.
pub const DEFAULT_LAST_N: usize = 3;
/// Default room size above which rooms use last-N audio.
pub const DEFAULT_LAST_N_THRESHOLD: usize = 20;
/// Default log filter.
pub const DEFAULT_LOG: &str = "info";
/// Default number of chat messages a room keeps for late joiners.
pub const DEFAULT_CHAT_HISTORY: usize = 100;
/// Default time a participant whose WebSocket dropped is kept for `join {resume}`.
pub const DEFAULT_RESUME_GRACE: Duration = Duration::from_secs(20);

/// Everything the server needs to start. Build it with [`Config::default`] (laptop defaults),
/// [`Config::ephemeral`] (loopback, port 0: for tests) or [`Config::from_cli`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// HTTP address: the web room, `/ws` and `/healthz`.
    pub http: SocketAddr,
    /// UDP media socket address (port 0 = any free port).
    pub udp: SocketAddr,
    /// ICE-TCP media listener address (port 0 = any free port).
    pub tcp: SocketAddr,
    /// Addresses advertised in the server's ICE candidates (with the bound UDP and TCP
    /// ports). Empty: the bound address; if that is unspecified (`0.0.0.0`/`::`), the
    /// machine's default-route address (found with an unconnected-socket trick, no packet
    /// sent), else 127.0.0.1.
    pub public_ips: Vec<IpAddr>,
    /// Log filter: a level (`info`) or `target=level` list (`info,tympan_sfu=debug`).
    pub log: String,
    /// Largest number of participants in one room.
    pub max_room_size: usize,
    /// Chat messages a room keeps and sends to late joiners (`joined.chat_history`; 0: none).
    pub chat_history: usize,
    /// Audio slots per subscriber in last-N rooms.
    pub last_n: usize,
    /// Rooms with more participants than this use last-N audio (0: every room).
    pub last_n_threshold: usize,
    /// Token-gated mode: `join` needs a token signed with this key's secret. `None` (no
    /// `--api-key`/`--api-secret`): open mode, anyone may join any room.
    pub access: Option<crate::token::Verifier>,
    /// How long a participant whose WebSocket dropped keeps its place (`--resume-grace`).
    pub resume_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: DEFAULT_HTTP,
            udp: DEFAULT_UDP,
            tcp: DEFAULT_TCP,
            public_ips: Vec::new(),
            log: DEFAULT_LOG.to_string(),
            max_room_size: DEFAULT_MAX_ROOM_SIZE,
            chat_history: DEFAULT_CHAT_HISTORY,
            last_n: DEFAULT_LAST_N,
            last_n_threshold: DEFAULT_LAST_N_THRESHOLD,
            access: None,
            resume_grace: DEFAULT_RESUME_GRACE,
        }
    }
}

/// Why the configuration could not be built.
#[derive(Debug)]
pub enum ConfigError {
    /// Bad flags or environment variables (includes `--help`; call `.exit()` on it).
    Cli(clap::Error),
    /// The TOML file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The TOML file does not parse or has unknown keys.
    Toml {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        error: toml::de::Error,
    },
    /// A value is out of range.
    Invalid(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Cli(e) => write!(f, "{e}"),
            ConfigError::Read { path, error } => {
                write!(f, "cannot read config file {}: {error}", path.display())
            }
            ConfigError::Toml { path, error } => {
                write!(f, "bad config file {}: {error}", path.display())
            }
            ConfigError::Invalid(m) => write!(f, "invalid configuration: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Command-line flags; each has a `TYMPAN_*` environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "tympan-sfu",
    about = "tympan room server: open the printed URL in two browser tabs",
    version
)]
struct Cli {
    /// TOML file with any of: http, udp, tcp, public_ip, log, max_room_size, chat_history,
    /// last_n, last_n_threshold, api_key, api_secret, resume_grace.
    #[arg(long, env = "TYMPAN_CONFIG", value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// API key: with --api-secret, rooms are token-gated (the `iss` of valid tokens).
    #[arg(long, env = "TYMPAN_API_KEY", value_name = "KEY", global = true)]
    api_key: Option<String>,
    /// API secret signing the tokens (HMAC-SHA256); never logged.
    #[arg(
        long,
        env = "TYMPAN_API_SECRET",
        value_name = "SECRET",
        global = true,
        hide_env_values = true
    )]
    api_secret: Option<String>,
    /// Seconds a participant whose WebSocket dropped keeps its place. [default: 20]
    #[arg(long, env = "TYMPAN_RESUME_GRACE", value_name = "SECS")]
    resume_grace: Option<u64>,
    /// Subcommand (none: run the server).
    #[command(subcommand)]
    command: Option<SubCommand>,
    /// HTTP address (web room, /ws, /healthz). [default: 127.0.0.1:8080]
    #[arg(long, env = "TYMPAN_HTTP", value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// UDP media address, shared by all peers. [default: 127.0.0.1:50000]
    #[arg(long, env = "TYMPAN_UDP", value_name = "ADDR")]
    udp: Option<SocketAddr>,
    /// ICE-TCP media address (RFC 6544 passive). [default: 127.0.0.1:50000]
    #[arg(long, env = "TYMPAN_TCP", value_name = "ADDR")]
    tcp: Option<SocketAddr>,
    /// IP advertised in ICE candidates; repeat for several (env: comma-separated).
    /// [default: the bind address, or the default-route address when binding 0.0.0.0]
    #[arg(
        long = "public-ip",
        env = "TYMPAN_PUBLIC_IP",
        value_name = "IP",
        value_delimiter = ','
    )]
    public_ip: Vec<IpAddr>,
    /// Log filter: a level or `target=level` list. [default: info]
    #[arg(long, env = "TYMPAN_LOG", value_name = "FILTER")]
    log: Option<String>,
    /// Largest number of participants in one room. [default: 50]
    #[arg(long, env = "TYMPAN_MAX_ROOM_SIZE", value_name = "N")]
    max_room_size: Option<usize>,
    /// Chat messages a room keeps for late joiners (0: none). [default: 100]
    #[arg(long, env = "TYMPAN_CHAT_HISTORY", value_name = "N")]
    chat_history: Option<usize>,
    /// Audio slots per subscriber in last-N rooms (the N loudest speakers). [default: 3]
    #[arg(long = "last-n", env = "TYMPAN_LAST_N", value_name = "N")]
    last_n: Option<usize>,
    /// Rooms with more participants than this use last-N audio; 0 = every room. [default: 20]
    #[arg(long, env = "TYMPAN_LAST_N_THRESHOLD", value_name = "N")]
    last_n_threshold: Option<usize>,
}

/// Subcommands of the server binary.
#[derive(Debug, clap::Subcommand)]
enum SubCommand {
    /// Print an access token for a token-gated server (same --api-key/--api-secret).
    Token {
        /// The room the token opens.
        #[arg(long)]
        room: String,
        /// The identity (`sub`).
        #[arg(long)]
        identity: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime in seconds. [default: 3600]
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// The token does not allow publishing.
        #[arg(long)]
        no_publish: bool,
        /// The token does not allow receiving the others' tracks.
        #[arg(long)]
        no_subscribe: bool,
    },
}

/// What the command line asks for: run the server, or mint a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server with this configuration.
    Serve(Config),
    /// `token …`: print a token (the configuration must be token-gated).
    MintToken {
        /// The server configuration (its `access` signs the token).
        config: Config,
        /// The token's request.
        request: MintRequest,
    },
}

/// The `token` subcommand's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    /// `--room`.
    pub room: String,
    /// `--identity`.
    pub identity: String,
    /// `--name`.
    pub name: Option<String>,
    /// `--ttl` (seconds).
    pub ttl: u64,
    /// Not `--no-publish`.
    pub can_publish: bool,
    /// Not `--no-subscribe`.
    pub can_subscribe: bool,
}

impl MintRequest {
    /// The claims of the token, issued at `now` (seconds since the Unix epoch).
    pub fn claims(&self, api_key: &str, now: u64) -> crate::token::Claims {
        let mut c = crate::token::Claims::new(api_key, &self.identity, &self.room, now + self.ttl);
        c.name = self.name.clone();
        c.can_publish = self.can_publish;
        c.can_subscribe = self.can_subscribe;
        c
    }
}

/// The TOML file's keys (all optional; unknown keys are an error, to catch typos).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http: Option<SocketAddr>,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    public_ip: Option<Vec<IpAddr>>,
    log: Option<String>,
    max_room_size: Option<usize>,
    chat_history: Option<usize>,
    last_n: Option<usize>,
    last_n_threshold: Option<usize>,
    api_key: Option<String>,
    api_secret: Option<String>,
    resume_grace: Option<u64>,
}

impl Config {
    /// Loopback, every port 0 (the OS picks): for tests that start servers in-process.
    pub fn ephemeral() -> Self {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        Self {
            http: any,
            udp: any,
            tcp: any,
            ..Self::default()
        }
    }

    /// From the process's arguments and environment (and `--config` file). On `--help`,
    /// `--version` or a bad flag, returns [`ConfigError::Cli`]: call `.exit()` on it.
    pub fn from_cli() -> Result<Self, ConfigError> {
        Self::try_from_args(std::env::args_os())
    }

    /// Like [`Config::from_cli`] with explicit arguments (the first is the program name).
    /// Environment variables are still read.
    pub fn try_from_args<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match Self::command_from_args(args)? {
            Command::Serve(config) | Command::MintToken { config, .. } => Ok(config),
        }
    }

    /// The command line as a [`Command`]: serve, or `token …` (mint a token).
    pub fn command_from_args<I, T>(args: I) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut cli = Cli::try_parse_from(args).map_err(ConfigError::Cli)?;
        let sub = cli.command.take();
        let config = Self::from_parsed(cli)?;
        Ok(match sub {
            None => Command::Serve(config),
            Some(SubCommand::Token {
                room,
                identity,
                name,
                ttl,
                no_publish,
                no_subscribe,
            }) => {
                if config.access.is_none() {
                    return Err(ConfigError::Invalid(
                        "token needs --api-key and --api-secret (or TYMPAN_API_KEY/TYMPAN_API_SECRET, or the TOML keys)".into(),
                    ));
                }
                Command::MintToken {
                    config,
                    request: MintRequest {
                        room,
                        identity,
                        name,
                        ttl,
                        can_publish: !no_publish,
                        can_subscribe: !no_subscribe,
                    },
                }
            }
        })
    }

    fn from_parsed(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: path.clone(),
                    error,
                })?;
                Self::parse_file(&text).map_err(|error| ConfigError::Toml {
                    path: path.clone(),
                    error,
                })?
            }
            None => FileConfig::default(),
        };
        Self::merge(cli, file)
    }

    fn parse_file(text: &str) -> Result<FileConfig, toml::de::Error> {
        toml::from_str(text)
    }

    fn merge(cli: Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let d = Self::default();
        let config = Self {
            http: cli.http.or(file.http).unwrap_or(d.http),
            udp: cli.udp.or(file.udp).unwrap_or(d.udp),
            tcp: cli.tcp.or(file.tcp).unwrap_or(d.tcp),
            public_ips: if cli.public_ip.is_empty() {
                file.public_ip.unwrap_or_default()
            } else {
                cli.public_ip
            },
            log: cli.log.or(file.log).unwrap_or(d.log),
            max_room_size: cli
                .max_room_size
                .or(file.max_room_size)
                .unwrap_or(d.max_room_size),
            chat_history: cli
                .chat_history
                .or(file.chat_history)
                .unwrap_or(d.chat_history),
            last_n: cli.last_n.or(file.last_n).unwrap_or(d.last_n),
            last_n_threshold: cli
                .last_n_threshold
                .or(file.last_n_threshold)
                .unwrap_or(d.last_n_threshold),
            access: match (
                cli.api_key.or(file.api_key),
                cli.api_secret.or(file.api_secret),
            ) {
                (None, None) => None,
                (Some(key), Some(secret)) if !key.is_empty() && !secret.is_empty() => {
                    Some(crate::token::Verifier::new(key, secret))
                }
                _ => {
                    return Err(ConfigError::Invalid(
                        "give both --api-key and --api-secret (token-gated rooms), or neither (open rooms)".into(),
                    ));
                }
            },
            resume_grace: cli
                .resume_grace
                .or(file.resume_grace)
                .map_or(d.resume_grace, Duration::from_secs),
        };
        if config.last_n > 255 {
            return Err(ConfigError::Invalid("last_n must be at most 255".into()));
        }
        if config.max_room_size == 0 {
            return Err(ConfigError::Invalid(
                "max_room_size must be at least 1".into(),
            ));
        }
        if let Some(ip) = config.public_ips.iter().find(|ip| ip.is_unspecified()) {
            return Err(ConfigError::Invalid(format!(
                "public ip {ip} is unspecified: give an address peers can reach"
            )));
        }
        Ok(config)
    }

    /// The IPs to advertise for sockets bound to `bound`.
    pub(crate) fn advertised_ips(&self, bound: IpAddr) -> Vec<IpAddr> {
        if !self.public_ips.is_empty() {
            return self.public_ips.clone();
        }
        if !bound.is_unspecified() {
            return vec![bound];
        }
        vec![default_route_ip(bound).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))]
    }
}

/// The source address the OS would use towards a documentation address (no packet is sent:
/// `connect` on UDP only selects the route).
fn default_route_ip(bound: IpAddr) -> Option<IpAddr> {
    let (local, probe): (SocketAddr, SocketAddr) = if bound.is_ipv4() {
        (
            "0.0.0.0:0".parse().ok()?,
            "192.0.2.1:9".parse().ok()?, // TEST-NET-1
        )
    } else {
        ("[::]:0".parse().ok()?, "[2001:db8::1]:9".parse().ok()?)
    };
    let socket = std::net::UdpSocket::bind(local).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        std::iter::once("tympan-sfu")
            .chain(list.iter().copied())
            .map(String::from)
            .collect()
    }

    #[test]
    fn defaults_with_nothing_set() {
        // Assumes no TYMPAN_* variable is set in the test environment.
        if std::env::vars().any(|(k, _)| k.starts_with("TYMPAN_")) {
            return;
        }
        assert_eq!(Config::try_from_args(args(&[])).unwrap(), Config::default());
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("tympan-sfu-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sfu.toml");
        std::fs::write(
            &path,
            "http = \"0.0.0.0:9000\"\nudp = \"127.0.0.1:40000\"\npublic_ip = [\"192.0.2.7\"]\nmax_room_size = 4\nchat_history = 7\n",
        )
        .unwrap();
        let c = Config::try_from_args(args(&[
            "--config",
            path.to_str().unwrap(),
            "--udp",
            "127.0.0.1:41000",
            "--public-ip",
            "198.51.100.1",
            "--public-ip",
            "198.51.100.2",
        ]))
        .unwrap();
        assert_eq!(c.http, "0.0.0.0:9000".parse().unwrap()); // file
        assert_eq!(c.udp, "127.0.0.1:41000".parse().unwrap()); // flag beats file
        assert_eq!(c.tcp, DEFAULT_TCP); // default
        assert_eq!(
            c.public_ips,
            vec![
                "198.51.100.1".parse::<IpAddr>().unwrap(),
                "198.51.100.2".parse().unwrap()
            ]
        );
        assert_eq!(c.max_room_size, 4);
        assert_eq!(c.chat_history, 7); // file
        let c = Config::try_from_args(args(&[
            "--config",
            path.to_str().unwrap(),
            "--chat-history",
            "0",
        ]))
        .unwrap();
        assert_eq!(c.chat_history, 0, "flag beats file; 0 is allowed");
        assert_eq!(
            (c.last_n, c.last_n_threshold),
            (DEFAULT_LAST_N, DEFAULT_LAST_N_THRESHOLD)
        );
        std::fs::write(&path, "last_n = 5\nlast_n_threshold = 0\n").unwrap();
        let c = Config::try_from_args(args(&["--config", path.to_str().unwrap(), "--last-n", "2"]))
            .unwrap();
        assert_eq!((c.last_n, c.last_n_threshold), (2, 0), "flag beats file");
        assert!(matches!(
            Config::try_from_args(args(&["--last-n", "256"])),
            Err(ConfigError::Invalid(_))
        ));
        std::fs::write(&path, "htp = \"0.0.0.0:9000\"\n").unwrap();
        let err = Config::try_from_args(args(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(matches!(err, ConfigError::Toml { .. }), "{err}");
        assert!(err.to_string().contains("htp"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Runs in a child process started by `environment_sits_between_flags_and_file` (the
    /// environment cannot be changed safely inside this multi-threaded test process).
    #[test]
    fn env_child() {
        let Some(path) = std::env::var_os("TYMPAN_TEST_CHILD_FILE") else {
            return;
        };
        let path = path.to_str().unwrap().to_string();
        let c =
            Config::try_from_args(args(&["--config", &path, "--udp", "127.0.0.1:7001"])).unwrap();
        assert_eq!(c.http, "127.0.0.1:9999".parse().unwrap(), "env beats file");
        assert_eq!(c.udp, "127.0.0.1:7001".parse().unwrap(), "flag beats env");
        assert_eq!(
            c.tcp,
            "127.0.0.1:7100".parse().unwrap(),
            "file beats default"
        );
        assert_eq!(c.max_room_size, 3, "env beats file");
        assert_eq!(
            c.public_ips,
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "192.0.2.2".parse().unwrap()
            ],
            "comma-separated env list"
        );
        println!("env_child checked");
    }

    #[test]
    fn environment_sits_between_flags_and_file() {
        let dir = std::env::temp_dir().join(format!("tympan-sfu-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sfu.toml");
        std::fs::write(
            &path,
            "http = \"127.0.0.1:9000\"\ntcp = \"127.0.0.1:7100\"\nmax_room_size = 9\n",
        )
        .unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "config::tests::env_child", "--nocapture"])
            .env("TYMPAN_TEST_CHILD_FILE", &path)
            .env("TYMPAN_HTTP", "127.0.0.1:9999")
            .env("TYMPAN_UDP", "127.0.0.1:7000")
            .env("TYMPAN_MAX_ROOM_SIZE", "3")
            .env("TYMPAN_PUBLIC_IP", "192.0.2.1,192.0.2.2")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("env_child checked"), "{stdout}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rejects_bad_values() {
        assert!(matches!(
            Config::try_from_args(args(&["--udp", "nope"])),
            Err(ConfigError::Cli(_))
        ));
        assert!(matches!(
            Config::try_from_args(args(&["--max-room-size", "0"])),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::try_from_args(args(&["--public-ip", "0.0.0.0"])),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn advertised_ips_follow_the_documented_rule() {
        let mut c = Config::default();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(c.advertised_ips(lo), vec![lo]);
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let ips = c.advertised_ips(any);
        assert_eq!(ips.len(), 1);
        assert!(!ips[0].is_unspecified());
        c.public_ips = vec!["192.0.2.9".parse().unwrap()];
        assert_eq!(c.advertised_ips(lo), c.public_ips);
    }
}
