//! The connection an `evict` repair writes with: typed commands over a
//! `source::redis_session::Session`, private to `repair`, so detection (which gets
//! `source::RedisConnection`, reads only) can never hold one.

use crate::Result;
use crate::load::SourceSpec;
use crate::source::RedisReply as Reply;
use crate::source::redis_session::{Session, session};

/// What a repair sends: the commands of plan, apply, undo and `repairs`, nothing else.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Watch(&'a [String]),
    Unwatch,
    Multi,
    Exec,
    Dump(&'a str),
    /// `PEXPIRETIME key`: when the key expires (Unix ms), -1 never, -2 no key.
    PExpireTime(&'a str),
    /// `TIME`: the server's clock.
    Time,
    Incr(&'a str),
    HSet {
        key: &'a str,
        field: &'a str,
        value: &'a [u8],
    },
    HDel {
        key: &'a str,
        field: &'a str,
    },
    HGetAll(&'a str),
    HExists {
        key: &'a str,
        field: &'a str,
    },
    HLen(&'a str),
    HScan {
        key: &'a str,
        cursor: &'a str,
        count: u32,
    },
    Del(&'a [String]),
    /// `RESTORE key ttl payload ABSTTL [REPLACE]`; `expire_at` 0 for none.
    Restore {
        key: &'a str,
        expire_at: i64,
        payload: &'a [u8],
        replace: bool,
    },
}

/// One connection to a Redis source that may write.
pub struct Writer {
    session: Session,
    /// The URL without its password.
    pub display_url: String,
}

impl Writer {
    pub async fn open(spec: &SourceSpec) -> Result<Writer> {
        let url = spec.resolve()?;
        Ok(Writer {
            session: session(&spec.name, &url, spec.connect_timeout).await?,
            display_url: crate::redact::redact(&url),
        })
    }

    /// Sends `commands` at once and reads their replies, in order.
    pub async fn send(&mut self, commands: &[Write<'_>]) -> Result<Vec<Reply>> {
        let mut numbers: Vec<Vec<u8>> = Vec::new();
        for command in commands {
            match command {
                Write::HScan { count, .. } => numbers.push(count.to_string().into_bytes()),
                Write::Restore { expire_at, .. } => {
                    numbers.push(expire_at.to_string().into_bytes());
                }
                _ => {}
            }
        }
        let mut numbers = numbers.iter();
        let mut args: Vec<Vec<&[u8]>> = Vec::with_capacity(commands.len());
        for command in commands {
            let b = str::as_bytes;
            args.push(match *command {
                Write::Watch(keys) => {
                    let mut a = vec![b("WATCH")];
                    a.extend(keys.iter().map(|k| k.as_bytes()));
                    a
                }
                Write::Unwatch => vec![b("UNWATCH")],
                Write::Multi => vec![b("MULTI")],
                Write::Exec => vec![b("EXEC")],
                Write::Dump(key) => vec![b("DUMP"), b(key)],
                Write::PExpireTime(key) => vec![b("PEXPIRETIME"), b(key)],
                Write::Time => vec![b("TIME")],
                Write::Incr(key) => vec![b("INCR"), b(key)],
                Write::HSet { key, field, value } => vec![b("HSET"), b(key), b(field), value],
                Write::HDel { key, field } => vec![b("HDEL"), b(key), b(field)],
                Write::HGetAll(key) => vec![b("HGETALL"), b(key)],
                Write::HExists { key, field } => vec![b("HEXISTS"), b(key), b(field)],
                Write::HLen(key) => vec![b("HLEN"), b(key)],
                Write::HScan { key, cursor, .. } => vec![
                    b("HSCAN"),
                    b(key),
                    b(cursor),
                    b("COUNT"),
                    numbers.next().map_or(b"100", |n| n.as_slice()),
                ],
                Write::Del(keys) => {
                    let mut a = vec![b("DEL")];
                    a.extend(keys.iter().map(|k| k.as_bytes()));
                    a
                }
                Write::Restore {
                    key,
                    payload,
                    replace,
                    ..
                } => {
                    let mut a = vec![
                        b("RESTORE"),
                        b(key),
                        numbers.next().map_or(b"0", |n| n.as_slice()),
                        payload,
                        b("ABSTTL"),
                    ];
                    if replace {
                        a.push(b("REPLACE"));
                    }
                    a
                }
            });
        }
        self.session.send(&args).await
    }

    /// Sends one command and returns its reply.
    pub async fn one(&mut self, command: Write<'_>) -> Result<Reply> {
        Ok(self.send(&[command]).await?.pop().unwrap_or(Reply::Nil))
    }
}
