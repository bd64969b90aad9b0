//! Reports in core: the first findings a report reads from the store are those `show`
//! lists, on SQLite and PostgreSQL stores; a live check's report and the report of the run
//! it recorded agree; owners and runbooks come from the rule files, or from the run.

mod support;

use support::{TestDb, TestProject, run_and_record};
use trueup_core::cancel::Cancel;
use trueup_core::check::{self, CheckOptions};
use trueup_core::load::Project;
use trueup_core::report::{self, Collector, Options};
use trueup_core::rule::Severity;
use trueup_core::store::Store;
use trueup_shop::ShopSpec;

/// The demo shop in a SQLite file, and a project of the e-commerce pack over it.
async fn shop() -> (TestDb, TestProject) {
    let db = TestDb::sqlite();
    let path = db.url.trim_start_matches("sqlite://");
    trueup_shop::create_sqlite(std::path::Path::new(path), &ShopSpec::demo())
        .await
        .unwrap();
    let files = support::ecommerce_pack();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let project = TestProject::with_source("shop", &db.url, &borrowed);
    (db, project)
}

async fn first_findings_match_findings(store: &Store, project: &TestProject) {
    let (_, run) = run_and_record(&project.path(), Some(store)).await;
    let run = run.unwrap();
    for limit in [1, 3, 1000] {
        let sorted = store.findings(run, Some(limit)).await.unwrap();
        let first = store
            .first_findings(run, usize::try_from(limit).unwrap())
            .await
            .unwrap();
        let identity = |f: &trueup_core::store::StoredFinding| {
            (
                f.rule.clone(),
                f.fingerprint.clone(),
                f.key.clone(),
                f.message.clone(),
            )
        };
        assert_eq!(
            first.iter().map(identity).collect::<Vec<_>>(),
            sorted.iter().map(identity).collect::<Vec<_>>(),
            "limit {limit}"
        );
    }
    assert!(store.first_findings(run, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn first_findings_are_those_show_lists_on_sqlite() {
    let (_db, project) = shop().await;
    let store = Store::open(&project.dir.path().join(".trueup/state.db"))
        .await
        .unwrap();
    first_findings_match_findings(&store, &project).await;
}

#[tokio::test]
async fn first_findings_are_those_show_lists_on_postgres() {
    let Some(state) = TestDb::postgres().await else {
        return;
    };
    let (_db, project) = shop().await;
    let store = Store::open_url(&state.url).await.unwrap();
    first_findings_match_findings(&store, &project).await;
}

#[tokio::test]
async fn a_live_report_is_the_report_of_the_run_it_recorded() {
    let (_db, project) = shop().await;
    let loaded = Project::load(&project.path()).unwrap();
    let options = CheckOptions {
        record: true,
        ..CheckOptions::default()
    };
    let mut collector = Collector::new(3);
    let checked = check::run(&loaded, &options, &Cancel::new(), &mut &mut collector)
        .await
        .unwrap();
    let live = collector.report(&checked, None);
    let store = Store::open_read_only(&loaded.state).await.unwrap();
    let options = Options {
        show: 3,
        trend: 5,
        fail_on: Severity::Low,
    };
    let recorded = report::from_store(&store, checked.run.unwrap(), &options, Some(&loaded))
        .await
        .unwrap();
    let summary = |r: &report::Report| {
        r.rules
            .iter()
            .map(|rule| {
                let keys: Vec<String> = rule.keys.iter().map(|k| k.fingerprint.clone()).collect();
                let texts: Vec<String> = rule.keys.iter().map(|k| k.text.clone()).collect();
                (
                    rule.id.clone(),
                    rule.findings,
                    rule.failing,
                    rule.title.clone(),
                    rule.owner.clone(),
                    keys,
                    texts,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&live), summary(&recorded));
    assert_eq!(live.totals.findings, 22);
    assert_eq!(recorded.trend.len(), 1, "the first run is the whole trend");
    assert!(
        recorded
            .rules
            .iter()
            .all(|r| r.keys.len() == 3 && r.failing)
    );

    // Without the project: what the run recorded, and no titles.
    let bare = report::from_store(&store, checked.run.unwrap(), &options, None)
        .await
        .unwrap();
    let orphans = bare
        .rules
        .iter()
        .find(|r| r.id == "ecommerce.orphaned-orders")
        .unwrap();
    assert_eq!(orphans.title, None);
    assert_eq!(orphans.owner.as_deref(), Some("data-team"));
    assert!(orphans.runbook.as_deref().unwrap().starts_with("runbooks/"));
}
