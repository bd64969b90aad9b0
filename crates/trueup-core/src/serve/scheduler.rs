//! One schedule's loop: sleep until the next due time, claim the occurrence in the store,
//! run it; a due time that comes while the schedule's run still goes is skipped and counted.
//! Between due times the loop looks for an occurrence whose replica died (its lease
//! expired) and takes it over.

use std::sync::Arc;
use std::time::Duration;

use jiff::{Timestamp, Zoned};
use tokio::task::JoinHandle;

use super::log::{Level, Record};
use super::{Schedule, Service, run};
use crate::project::ScheduleConfig;
use crate::store::Claim;

/// The first due time of `schedule` after `after`, in its time zone; `None` when its
/// expression matches no time to come.
pub fn next_due(schedule: &ScheduleConfig, after: Timestamp) -> Option<Timestamp> {
    let zone = schedule
        .time_zone
        .as_ref()
        .map_or(jiff::tz::TimeZone::UTC, |z| z.zone.clone());
    let now = Zoned::new(after, zone);
    schedule
        .cron
        .cron
        .find_next_occurrence(&now, false)
        .ok()
        .map(|next| next.timestamp())
}

/// Milliseconds since the epoch of a timestamp.
fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// Runs `schedule` until the service stops; then waits for its running audit, which the
/// stop cancels, to be recorded.
pub async fn run(service: Arc<Service>, schedule: Arc<Schedule>) {
    let config = &service.project.schedules[schedule.index];
    let poll = (service.lease_expiry / 2).max(Duration::from_millis(500));
    let mut running: Option<JoinHandle<()>> = None;
    let mut next = next_due(config, Timestamp::now());
    if next.is_none() {
        service.log.log(
            Record::new(
                Level::Warn,
                "schedule.never",
                "the schedule's cron expression matches no time to come; it never runs",
            )
            .with("schedule", schedule.name.as_str()),
        );
    }
    // A takeover look right at start: a replica that died (or this one, restarted) may
    // have left an occurrence unfinished.
    let mut look_at = tokio::time::Instant::now();
    loop {
        let wake = next.map(|due| {
            let wait = due.duration_since(Timestamp::now());
            let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
            tokio::time::Instant::now() + wait
        });
        let finished = async {
            match running.as_mut() {
                Some(handle) => {
                    let _ = handle.await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = service.shutdown.cancelled() => break,
            () = finished => {
                running = None;
                continue;
            }
            () = sleep_until(wake) => {}
            () = tokio::time::sleep_until(look_at) => {
                look_at = tokio::time::Instant::now() + poll;
                if running.is_none() {
                    running = take_over(&service, &schedule).await;
                }
                continue;
            }
        }
        let Some(due) = next else { continue };
        next = next_due(config, Timestamp::now().max(due));
        if running.as_ref().is_some_and(|r| !r.is_finished()) {
            skipped(&service, &schedule, due);
            continue;
        }
        let now = crate::time::now_millis();
        let expires = now.saturating_add(expiry_millis(&service));
        match service
            .store
            .claim(&schedule.name, millis(due), &service.replica, now, expires)
            .await
        {
            Ok(Claim::Taken) => {
                running = Some(tokio::spawn(run::occurrence(
                    Arc::clone(&service),
                    Arc::clone(&schedule),
                    millis(due),
                    false,
                )));
            }
            Ok(Claim::Elsewhere) => service.log.log(
                Record::new(
                    Level::Info,
                    "run.elsewhere",
                    "another replica runs this one",
                )
                .with("schedule", schedule.name.as_str())
                .with("due", due.to_string())
                .with("due_ms", millis(due)),
            ),
            // The replica whose run still goes counts the skip.
            Ok(Claim::Busy) => service.log.log(
                Record::new(
                    Level::Info,
                    "run.busy",
                    "the schedule's previous run still goes on another replica",
                )
                .with("schedule", schedule.name.as_str())
                .with("due", due.to_string())
                .with("due_ms", millis(due)),
            ),
            Err(err) => service.log.log(
                Record::new(
                    Level::Error,
                    "lease.failed",
                    format!(
                        "the run could not be claimed in the state store; it is skipped: {}",
                        crate::error::chain(&err)
                    ),
                )
                .with("schedule", schedule.name.as_str())
                .with("due", due.to_string())
                .with("due_ms", millis(due)),
            ),
        }
    }
    if let Some(handle) = running {
        let _ = handle.await;
    }
}

async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(super) fn expiry_millis(service: &Service) -> i64 {
    i64::try_from(service.lease_expiry.as_millis()).unwrap_or(i64::MAX)
}

/// A due time that came while the schedule's run still went.
fn skipped(service: &Service, schedule: &Schedule, due: Timestamp) {
    if let Ok(mut metrics) = service.metrics.lock() {
        metrics.run_skipped(&schedule.name);
    }
    service.log.log(
        Record::new(
            Level::Warn,
            "run.skipped",
            "skipped: the schedule's previous run is still going",
        )
        .with("schedule", schedule.name.as_str())
        .with("due", due.to_string())
        .with("due_ms", millis(due)),
    );
}

/// Takes over an unfinished occurrence whose lease expired, and runs it.
async fn take_over(service: &Arc<Service>, schedule: &Arc<Schedule>) -> Option<JoinHandle<()>> {
    let now = crate::time::now_millis();
    let expires = now.saturating_add(expiry_millis(service));
    match service
        .store
        .take_over(&schedule.name, &service.replica, now, expires)
        .await
    {
        Ok(Some(due)) => Some(tokio::spawn(run::occurrence(
            Arc::clone(service),
            Arc::clone(schedule),
            due,
            true,
        ))),
        Ok(None) => None,
        Err(err) => {
            service.log.log(
                Record::new(
                    Level::Error,
                    "lease.failed",
                    format!(
                        "the state store could not be asked for runs to take over: {}",
                        crate::error::chain(&err)
                    ),
                )
                .with("schedule", schedule.name.as_str()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, zone: Option<&str>) -> ScheduleConfig {
        let zone = zone.map_or(String::new(), |z| format!("time-zone = \"{z}\"\n"));
        let file: crate::project::ProjectFile = toml::from_str(&format!(
            "[[schedule]]\nname = \"s\"\ncron = \"{cron}\"\n{zone}"
        ))
        .unwrap();
        file.schedule.into_iter().next().unwrap()
    }

    #[test]
    fn due_times_follow_the_cron_expression_in_its_time_zone() {
        let at: Timestamp = "2026-03-28T12:00:00Z".parse().unwrap();
        // 03:00 in Berlin the morning its clocks go forward is summer time: 01:00 UTC.
        let next = next_due(&schedule("0 3 * * *", Some("Europe/Berlin")), at).unwrap();
        assert_eq!(next.to_string(), "2026-03-29T01:00:00Z");
        let next = next_due(&schedule("0 3 * * *", None), at).unwrap();
        assert_eq!(next.to_string(), "2026-03-29T03:00:00Z");
        let next = next_due(&schedule("* * * * * *", None), at).unwrap();
        assert_eq!(next.to_string(), "2026-03-28T12:00:01Z");
    }
}
