//! Redis sources: a small RESP2 client whose detection connection can send only reads.
//!
//! Detectors get a [`Connection`], whose one method sends [`Read`] commands: an enum of
//! the read commands with typed arguments, so read-only holds by construction, not by
//! checking strings. Under it, the private [`Raw`] connection sends [`Request`]s, which
//! nothing outside this module can build. A connection is opened per rule and
//! driven in the rule's own future (no task of its own): a timeout or Ctrl-C drops the
//! future and the socket closes. What one reply may hold is bounded ([`MAX_BULK`],
//! [`MAX_ARRAY`], a line of 64 KiB).
//!
//! URLs: `redis://[user:password@]host[:port][/db]` (port 6379, database 0 by default),
//! `rediss://…` over TLS (rustls with ring and the system's roots, as the other clients).
//! A password is sent with `AUTH`, a database other than 0 chosen with `SELECT`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};

use crate::{Error, Result};

/// A command the detection connection may send: reads only, each a variant with typed
/// arguments. There is no variant that writes and no way to send a command by name from
/// outside this module, so a detector cannot send `DEL`, `FLUSHDB`, `CONFIG` or `EVAL`
/// whatever its rule says. `AUTH`, `SELECT` (of the URL's database) and `PING` are sent by
/// [`Server::open`] only. See docs/design/redis.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read<'a> {
    /// `GET key`: a string value.
    Get(&'a str),
    /// `HGETALL key`: a hash's fields.
    HGetAll(&'a str),
    /// `PTTL key`: milliseconds left, -1 for no TTL, -2 for no key.
    Pttl(&'a str),
    /// `TYPE key`.
    Type(&'a str),
    /// `EXISTS key`.
    Exists(&'a str),
    /// `DUMP key`: the value serialized (any type), nil for no key.
    Dump(&'a str),
    /// `SCAN cursor MATCH pattern COUNT count` (never `KEYS`).
    Scan {
        cursor: &'a str,
        pattern: &'a str,
        count: u32,
    },
}

/// The command names [`Read`] sends, for documentation and messages.
pub const READ_COMMANDS: &[&str] = &["GET", "HGETALL", "PTTL", "TYPE", "EXISTS", "DUMP", "SCAN"];

impl Read<'_> {
    fn request(&self) -> Request {
        match *self {
            Read::Get(key) => Request::new("GET").arg(key),
            Read::HGetAll(key) => Request::new("HGETALL").arg(key),
            Read::Pttl(key) => Request::new("PTTL").arg(key),
            Read::Type(key) => Request::new("TYPE").arg(key),
            Read::Exists(key) => Request::new("EXISTS").arg(key),
            Read::Dump(key) => Request::new("DUMP").arg(key),
            Read::Scan {
                cursor,
                pattern,
                count,
            } => Request::new("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count.to_string()),
        }
    }
}

/// The longest value one reply may carry (Redis allows 512 MiB); past it the rule fails.
pub const MAX_BULK: usize = 64 << 20;
/// The most elements one reply's array may have (a hash of a million fields).
pub const MAX_ARRAY: usize = 2 << 20;
/// The longest status, error or length line of a reply.
const MAX_LINE: u64 = 64 << 10;

/// One command and its arguments, as sent: built by [`Read`] and by [`Server::open`]'s
/// login only.
#[derive(Debug, Clone)]
struct Request {
    args: Vec<Vec<u8>>,
}

impl Request {
    /// A command with no arguments yet.
    fn new(name: &'static str) -> Request {
        Request {
            args: vec![name.as_bytes().to_vec()],
        }
    }

    fn arg(mut self, arg: impl AsRef<[u8]>) -> Request {
        self.args.push(arg.as_ref().to_vec());
        self
    }

    fn encode(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(out, "*{}\r\n", self.args.len());
        for arg in &self.args {
            let _ = write!(out, "${}\r\n", arg.len());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// One reply of the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Nil,
    Status(String),
    /// An error reply to one command (`WRONGTYPE …`): the command's answer, not a failed
    /// connection.
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
}

/// Where a Redis source is and how to log in; opened per rule ([`Server::open`]).
#[derive(Clone)]
pub struct Server {
    name: String,
    /// `host:port`, as errors show it.
    address: String,
    host: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    user: Option<String>,
    password: Option<String>,
    db: u32,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// Reads the URL and opens one connection (`PING`), so that a server that is not there
/// fails the source when it is opened, as a database does.
pub(super) async fn connect(name: &str, url: &str, connect_timeout: Duration) -> Result<Server> {
    let server = parse(name, url, connect_timeout)?;
    let mut connection = server.raw().await?;
    match connection.send(&[Request::new("PING")]).await?.pop() {
        Some(Reply::Status(_) | Reply::Bulk(_)) => Ok(server),
        other => Err(server.error(true, format!("answered PING with {other:?}"))),
    }
}

/// The server a `redis://` or `rediss://` URL names; an error that never quotes the
/// URL's password.
fn parse(name: &str, url: &str, connect_timeout: Duration) -> Result<Server> {
    let bad = |why: &str| Error::UnsupportedUrl {
        source_name: name.to_owned(),
        url: format!("{} ({why})", crate::redact::redact(url)),
    };
    let parsed = url::Url::parse(url).map_err(|_| bad("not a URL"))?;
    let tls = match parsed.scheme() {
        "redis" => None,
        "rediss" => Some(Arc::new(crate::http_client::tls_config().map_err(
            |message| Error::Api {
                source_name: name.to_owned(),
                connection: true,
                message,
            },
        )?)),
        _ => return Err(bad("not a redis:// URL")),
    };
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a Redis source takes no `?` parameters"));
    }
    let db = match parsed.path().trim_matches('/') {
        "" => 0,
        db => db
            .parse::<u32>()
            .map_err(|_| bad("the path is the database number, e.g. /0"))?,
    };
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let port = parsed.port().unwrap_or(6379);
    let address = match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    };
    Ok(Server {
        name: name.to_owned(),
        address,
        host,
        tls,
        user: Some(decode(parsed.username())).filter(|u| !u.is_empty()),
        password: parsed.password().map(decode),
        db,
        connect_timeout,
    })
}

/// The byte stream under a connection: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection that sends only [`Read`] commands: what [`Server::open`] (and so
/// `Source::redis`) hands to detectors and plans.
pub struct Connection {
    raw: Raw,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.raw.address)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Sends `reads` at once (one write, one round trip) and reads their replies, in order.
    pub async fn pipeline(&mut self, reads: &[Read<'_>]) -> Result<Vec<Reply>> {
        let requests: Vec<Request> = reads.iter().map(Read::request).collect();
        self.raw.send(&requests).await
    }
}

/// A connection that sends the commands it is given, writes included: what the repair
/// module's writing connection (`repair::evict::conn`) is built on, with its own typed
/// commands. Detection never gets one: [`Server::open`] hands out [`Connection`]s, and
/// `tests/layering.rs` fails when a module other than `repair` names [`session`].
pub struct Session {
    raw: Raw,
}

impl Session {
    /// Sends `commands` (each its name and arguments) at once and reads their replies.
    pub async fn send(&mut self, commands: &[Vec<&[u8]>]) -> Result<Vec<Reply>> {
        let requests: Vec<Request> = commands
            .iter()
            .map(|args| Request {
                args: args.iter().map(|a| a.to_vec()).collect(),
            })
            .collect();
        self.raw.send(&requests).await
    }
}

/// Opens a [`Session`] to the Redis server of `url` (a source's, `${VAR}`s resolved), logged
/// in and on its database, within `connect_timeout`.
pub async fn session(name: &str, url: &str, connect_timeout: Duration) -> Result<Session> {
    let server = parse(name, url, connect_timeout)?;
    Ok(Session {
        raw: server.raw().await?,
    })
}

/// One open connection, logged in and on its database, that sends whatever [`Request`]s
/// it is given: only [`Connection`], [`Session`] and the login use it.
struct Raw {
    stream: BufStream<Box<dyn Io>>,
    name: String,
    address: String,
    buffer: Vec<u8>,
}

impl Server {
    fn error(&self, connection: bool, message: impl std::fmt::Display) -> Error {
        Error::Api {
            source_name: self.name.clone(),
            connection,
            message: format!("Redis at {}: {message}", self.address),
        }
    }

    /// Opens a read-only connection ([`Read`] commands only).
    pub async fn open(&self) -> Result<Connection> {
        Ok(Connection {
            raw: self.raw().await?,
        })
    }

    /// Opens a connection within the source's `connect-timeout`: TCP, TLS for `rediss://`,
    /// `AUTH` and `SELECT` when the URL asks for them.
    async fn raw(&self) -> Result<Raw> {
        match tokio::time::timeout(self.connect_timeout, self.open_now()).await {
            Ok(connection) => connection,
            Err(_) => Err(Error::ConnectTimeout {
                source_name: self.name.clone(),
                address: self.address.clone(),
                limit: self.connect_timeout,
            }),
        }
    }

    async fn open_now(&self) -> Result<Raw> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), port_of(&self.address)))
            .await
            .map_err(|e| self.error(true, e))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let server_name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| self.error(true, format!("not a TLS server name: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(server_name, tcp)
                    .await
                    .map_err(|e| self.error(true, format!("TLS: {e}")))?;
                Box::new(tls)
            }
        };
        let mut connection = Raw {
            stream: BufStream::with_capacity(64 * 1024, 64 * 1024, io),
            name: self.name.clone(),
            address: self.address.clone(),
            buffer: Vec::new(),
        };
        let mut login = Vec::new();
        if let Some(password) = &self.password {
            login.push(match &self.user {
                Some(user) => Request::new("AUTH").arg(user).arg(password),
                None => Request::new("AUTH").arg(password),
            });
        }
        if self.db != 0 {
            login.push(Request::new("SELECT").arg(self.db.to_string()));
        }
        for reply in connection.send(&login).await? {
            if let Reply::Error(message) = reply {
                // The server's words (`WRONGPASS invalid username-password pair`) never
                // contain the password.
                return Err(self.error(true, message));
            }
        }
        Ok(connection)
    }
}

fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(6379)
}

impl Raw {
    fn error(&self, connection: bool, message: impl std::fmt::Display) -> Error {
        Error::Api {
            source_name: self.name.clone(),
            connection,
            message: format!("Redis at {}: {message}", self.address),
        }
    }

    /// Sends `requests` at once and reads their replies, in order. An error reply to one
    /// command is that command's [`Reply::Error`]; a broken connection is an error.
    async fn send(&mut self, requests: &[Request]) -> Result<Vec<Reply>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        self.buffer.clear();
        for request in requests {
            request.encode(&mut self.buffer);
        }
        let sent = async {
            self.stream.write_all(&self.buffer).await?;
            self.stream.flush().await
        }
        .await;
        sent.map_err(|e| self.error(true, e))?;
        let mut replies = Vec::with_capacity(requests.len());
        for _ in requests {
            let reply = read_reply(&mut self.stream, 0).await;
            replies.push(reply.map_err(|e| self.error(true, e))?);
        }
        Ok(replies)
    }
}

/// Reads one reply; nested arrays at most 8 deep (trueup's commands nest 2), each line and
/// value bounded.
async fn read_reply<R: AsyncBufReadExt + Unpin + Send>(
    stream: &mut R,
    depth: usize,
) -> std::io::Result<Reply> {
    let broken = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut line = Vec::new();
    (&mut *stream)
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(broken(
            "a reply line without its end (cut short, or too long)".to_owned(),
        ));
    }
    let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let number = || {
        text.parse::<i64>().map_err(|_| {
            broken(format!(
                "`{}` where a number belongs",
                crate::text::escape(&text)
            ))
        })
    };
    Ok(match line[0] {
        b'+' => Reply::Status(text),
        b'-' => Reply::Error(text),
        b':' => Reply::Int(number()?),
        b'$' => match usize::try_from(number()?) {
            Err(_) => Reply::Nil,
            Ok(len) if len > MAX_BULK => {
                return Err(broken(format!(
                    "a value of {} is larger than trueup reads ({})",
                    crate::size::ByteSize(u64::try_from(len).unwrap_or(u64::MAX)),
                    crate::size::ByteSize(MAX_BULK as u64)
                )));
            }
            Ok(len) => {
                let mut value = vec![0; len + 2];
                stream.read_exact(&mut value).await?;
                if !value.ends_with(b"\r\n") {
                    return Err(broken("a value without its end".to_owned()));
                }
                value.truncate(len);
                Reply::Bulk(value)
            }
        },
        b'*' => match usize::try_from(number()?) {
            Err(_) => Reply::Nil,
            Ok(len) if len > MAX_ARRAY || depth >= 8 => {
                return Err(broken(format!(
                    "an answer of {len} elements, more than trueup reads"
                )));
            }
            Ok(len) => {
                let mut items = Vec::with_capacity(len.min(1024));
                for _ in 0..len {
                    items.push(Box::pin(read_reply(stream, depth + 1)).await?);
                }
                Reply::Array(items)
            }
        },
        _ => return Err(broken("not a RESP reply: is it a Redis server?".to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(read: Read<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        read.request().encode(&mut out);
        out
    }

    #[test]
    fn reads_encode_as_their_commands_only() {
        assert_eq!(
            encoded(Read::Get("a b")),
            b"*2\r\n$3\r\nGET\r\n$3\r\na b\r\n"
        );
        assert_eq!(
            encoded(Read::Scan {
                cursor: "0",
                pattern: "customer:*",
                count: 1000
            }),
            b"*6\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$10\r\ncustomer:*\r\n$5\r\nCOUNT\r\n$4\r\n1000\r\n"
        );
        // Every read sends one of the read commands, and nothing else.
        for read in [
            Read::Get("k"),
            Read::HGetAll("k"),
            Read::Pttl("k"),
            Read::Type("k"),
            Read::Exists("k"),
            Read::Dump("k"),
        ] {
            let request = read.request();
            let name = String::from_utf8(request.args[0].clone()).unwrap();
            assert!(READ_COMMANDS.contains(&name.as_str()), "{name}");
            assert_eq!(request.args.len(), 2, "{name} takes the key only");
        }
    }

    #[test]
    fn a_key_that_looks_like_a_command_is_one_argument() {
        // RESP sends lengths, not words: a key holding spaces, CRLF or `DEL x` stays the
        // argument of its GET.
        let out = encoded(Read::Get("x\r\nDEL y"));
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$8\r\nx\r\nDEL y\r\n");
    }

    #[tokio::test]
    async fn replies_are_read_and_bounded() {
        let mut input: &[u8] =
            b"+OK\r\n-WRONGTYPE no\r\n:-2\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n$1\r\n0\r\n*0\r\n";
        let mut reader = tokio::io::BufReader::new(&mut input);
        let mut replies = Vec::new();
        for _ in 0..6 {
            replies.push(read_reply(&mut reader, 0).await.expect("a reply"));
        }
        assert_eq!(
            replies,
            [
                Reply::Status("OK".into()),
                Reply::Error("WRONGTYPE no".into()),
                Reply::Int(-2),
                Reply::Bulk(b"a\r\n".to_vec()),
                Reply::Nil,
                Reply::Array(vec![Reply::Bulk(b"0".to_vec()), Reply::Array(vec![])]),
            ]
        );
        let mut huge: &[u8] = b"$999999999\r\n";
        let err = read_reply(&mut tokio::io::BufReader::new(&mut huge), 0)
            .await
            .expect_err("too large");
        assert!(
            err.to_string().contains("larger than trueup reads"),
            "{err}"
        );
        let endless = vec![b'+'; 200_000];
        let err = read_reply(&mut tokio::io::BufReader::new(&endless[..]), 0)
            .await
            .expect_err("too long a line");
        assert!(err.to_string().contains("too long"), "{err}");
    }

    #[test]
    fn urls_are_read_without_showing_the_password() {
        let server = parse(
            "cache",
            "rediss://app:s3cret@cache.internal:6380/2",
            Duration::from_secs(1),
        )
        .expect("a URL");
        assert_eq!(server.address, "cache.internal:6380");
        assert_eq!(server.db, 2);
        assert!(server.tls.is_some());
        assert!(!format!("{server:?}").contains("s3cret"));
        for bad in [
            "redis://:s3cret@host/abc",
            "redis://:s3cret@host/0?timeout=1",
            "redis://:s3cret@/0",
        ] {
            let err = parse("cache", bad, Duration::from_secs(1)).expect_err(bad);
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }
}
