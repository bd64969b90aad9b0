//! Undoing an `evict`: every journaled key `RESTORE`d with its value and its expiry as it
//! was (`ABSTTL`, so a key keeps the deadline it had and one whose deadline has passed
//! stays gone), in pages of the journal, each page one `WATCH`ed `MULTI`/`EXEC` that journals
//! the undo beside the restores. A key that exists again (the application cached it anew)
//! is a conflict: the undo stops there unless forced (`RESTORE … REPLACE`).

use super::super::undo::{Conflict, UndoReport};
use super::conn::{Write, Writer};
use super::{Entry, begin, finish, journal_key, records, save, unexpected};
use crate::cancel::Cancel;
use crate::load::Project;
use crate::source::RedisReply as Reply;
use crate::{Error, Result};

/// Journal entries restored in one transaction.
const PAGE: u32 = 500;
const ATTEMPTS: usize = 5;
const SAMPLE: usize = 20;

/// Undoes `evict` repair `id` of the Redis source `source`: its report, how it ended, the
/// plan and rules (`repair::undo` records it in the state store).
pub async fn undo(
    project: &Project,
    source: &str,
    id: i64,
    force: bool,
    cancel: &Cancel,
) -> Result<(UndoReport, &'static str, String, Vec<String>)> {
    let mut w = Writer::open(&project.sources[source]).await?;
    let all = records(&mut w).await?;
    let Some((_, original)) = all.iter().find(|(i, _)| *i == id).cloned() else {
        return Err(Error::Selection(format!(
            "source `{source}`'s journal has no repair {id} (see `trueup repairs`)"
        )));
    };
    if original.kind != "apply" {
        return Err(Error::Mismatch(format!(
            "repair {id} is an undo: trueup does not undo the undo of an eviction; plan and \
             apply the eviction again instead"
        )));
    }
    if let Some(by) = original.undone_by {
        return Err(Error::Mismatch(format!(
            "repair {id} was already undone by repair {by}"
        )));
    }
    // Keys an earlier undo of this repair (one that stopped part way) restored are done.
    let mut done: Vec<String> = all
        .iter()
        .filter(|(_, r)| r.undoes == Some(id))
        .map(|(i, _)| journal_key(*i))
        .collect();
    let (undo, mut record) = begin(
        &mut w,
        "undo",
        Some(id),
        &original.plan_hash,
        original.rules.clone(),
    )
    .await?;
    done.push(journal_key(undo));
    let mut report = UndoReport {
        source: source.to_owned(),
        repair: id,
        undo,
        restored: 0,
        expired: 0,
        undoable: false,
        conflicts: Vec::new(),
        forced: force,
        interrupted: false,
        complete: false,
        store_error: None,
    };
    let journal = journal_key(id);
    let mut cursor = "0".to_owned();
    let mut page_number = 0;
    let ended = loop {
        if cancel.is_cancelled() {
            report.interrupted = true;
            break "stopped";
        }
        let (next, entries) = scan(&mut w, &journal, &cursor).await?;
        page_number += 1;
        let entries = not_done(&mut w, &done, entries).await?;
        if !entries.is_empty()
            && !restore_page(&mut w, undo, page_number, &entries, &mut report).await?
        {
            break "refused";
        }
        cursor = next;
        if cursor == "0" {
            report.complete = true;
            break "complete";
        }
    };
    let rows = finish(&mut w, undo, &mut record, ended).await?;
    if report.complete && rows > 0 {
        let mut original = original;
        original.undone_by = Some(undo);
        save(&mut w, id, &original).await?;
    }
    Ok((report, ended, record.plan_hash, record.rules))
}

/// One `HSCAN` page of a journal: the next cursor and the entries (key, entry bytes).
async fn scan(
    w: &mut Writer,
    journal: &str,
    cursor: &str,
) -> Result<(String, Vec<(String, Vec<u8>)>)> {
    let reply = w
        .one(Write::HScan {
            key: journal,
            cursor,
            count: PAGE,
        })
        .await?;
    let Reply::Array(mut parts) = reply else {
        return Err(unexpected("HSCAN", reply));
    };
    let (Some(Reply::Array(items)), Some(Reply::Bulk(next))) = (parts.pop(), parts.pop()) else {
        return Err(Error::Other(
            "Redis answered HSCAN with something else".into(),
        ));
    };
    let mut entries = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(Reply::Bulk(key)), Some(Reply::Bulk(entry))) = (items.next(), items.next()) {
        entries.push((String::from_utf8_lossy(&key).into_owned(), entry));
    }
    Ok((String::from_utf8_lossy(&next).into_owned(), entries))
}

/// The entries whose keys no undo of this repair restored yet (`HSCAN` may also return a
/// key twice).
async fn not_done(
    w: &mut Writer,
    done: &[String],
    entries: Vec<(String, Vec<u8>)>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut checks = Vec::with_capacity(entries.len() * done.len());
    for (key, _) in &entries {
        for journal in done {
            checks.push(Write::HExists {
                key: journal,
                field: key,
            });
        }
    }
    let replies = w.send(&checks).await?;
    let mut out = Vec::with_capacity(entries.len());
    let mut seen = std::collections::HashSet::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let restored = replies[i * done.len()..(i + 1) * done.len()].contains(&Reply::Int(1));
        if !restored && seen.insert(entry.0.clone()) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Restores one page of entries in one transaction; `false` when conflicts stopped it.
async fn restore_page(
    w: &mut Writer,
    undo: i64,
    page: i64,
    entries: &[(String, Vec<u8>)],
    report: &mut UndoReport,
) -> Result<bool> {
    let parsed: Vec<(&str, Entry<'_>)> = entries
        .iter()
        .map(|(key, bytes)| {
            Entry::decode(bytes)
                .map(|e| (key.as_str(), e))
                .ok_or_else(|| {
                    Error::Other(format!(
                        "the journal's entry for `{key}` is not one trueup wrote"
                    ))
                })
        })
        .collect::<Result<_>>()?;
    let keys: Vec<String> = parsed.iter().map(|(k, _)| (*k).to_owned()).collect();
    let journal = journal_key(undo);
    for _ in 0..ATTEMPTS {
        let mut reads = vec![Write::Watch(&keys), Write::Time];
        for key in &keys {
            reads.push(Write::Dump(key));
            reads.push(Write::PExpireTime(key));
        }
        let replies = w.send(&reads).await?;
        let now = server_millis(replies.get(1))?;
        let mut now_there: Vec<Option<(Vec<u8>, i64)>> = Vec::with_capacity(keys.len());
        for i in 0..keys.len() {
            now_there.push(match (replies.get(2 + 2 * i), replies.get(3 + 2 * i)) {
                (Some(Reply::Bulk(dump)), Some(Reply::Int(at))) => Some((dump.clone(), *at)),
                _ => None,
            });
        }
        let conflicts: Vec<usize> = (0..keys.len())
            .filter(|i| now_there[*i].is_some())
            .collect();
        if !conflicts.is_empty() && !report.forced {
            w.one(Write::Unwatch).await?;
            for i in conflicts {
                if report.conflicts.len() < SAMPLE {
                    report.conflicts.push(Conflict {
                        table: "cache".to_owned(),
                        key: serde_json::Value::Array(vec![keys[i].clone().into()]),
                        what: "the key exists again (cached anew since the eviction)",
                    });
                }
            }
            return Ok(false);
        }
        // What the undo replaces, journaled so the undo says what it did.
        let undo_entries: Vec<Vec<u8>> = now_there
            .iter()
            .map(|there| match there {
                Some((dump, at)) => Entry::encode(page, *at, dump),
                None => Entry::encode(page, -2, b""),
            })
            .collect();
        let mut writes = vec![Write::Multi];
        let mut expired = 0;
        for (i, (key, entry)) in parsed.iter().enumerate() {
            // Past its deadline the key would have expired by now: RESTORE leaves it out.
            if entry.expire_at > 0 && entry.expire_at <= now {
                expired += 1;
            }
            writes.push(Write::Restore {
                key,
                expire_at: entry.expire_at.max(0),
                payload: entry.payload,
                replace: now_there[i].is_some(),
            });
            writes.push(Write::HSet {
                key: &journal,
                field: key,
                value: &undo_entries[i],
            });
        }
        writes.push(Write::Exec);
        match w.send(&writes).await?.pop().unwrap_or(Reply::Nil) {
            Reply::Nil => continue,
            Reply::Array(results) => {
                if let Some(bad) = results.iter().find(|r| matches!(r, Reply::Error(_))) {
                    return Err(unexpected("RESTORE", bad.clone()));
                }
                report.restored += keys.len() as u64 - expired;
                report.expired += expired;
                if report.forced {
                    for i in (0..keys.len()).filter(|i| now_there[*i].is_some()) {
                        if report.conflicts.len() < SAMPLE {
                            report.conflicts.push(Conflict {
                                table: "cache".to_owned(),
                                key: serde_json::Value::Array(vec![keys[i].clone().into()]),
                                what: "the key existed again and was replaced (--force)",
                            });
                        }
                    }
                }
                return Ok(true);
            }
            other => return Err(unexpected("EXEC", other)),
        }
    }
    Err(Error::Other(format!(
        "the keys of a page changed during each of {ATTEMPTS} attempts (WATCH): run undo again"
    )))
}

/// `TIME`'s reply as Unix milliseconds.
fn server_millis(reply: Option<&Reply>) -> Result<i64> {
    if let Some(Reply::Array(parts)) = reply
        && let [Reply::Bulk(s), Reply::Bulk(us)] = parts.as_slice()
    {
        let number = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<i64>().ok();
        if let (Some(s), Some(us)) = (number(s), number(us)) {
            return Ok(s * 1000 + us / 1000);
        }
    }
    Err(Error::Other(format!("Redis answered TIME with {reply:?}")))
}
