//! What a detector reads: the tables and columns it names (checked against the source
//! before it runs), its `where`, and the column it compares with the clock.

use super::Detector;

/// A column a built-in compares with the clock (`freshness`), and the rows it looks at.
#[derive(Debug, Clone)]
pub struct TimestampColumn {
    pub table: String,
    pub column: String,
    /// The detector's `where`: the newest value is the newest of these rows.
    pub filter: Option<String>,
}

/// A table a detector reads, and the columns of it the detector names.
#[derive(Debug)]
pub struct TableUse<'a> {
    pub table: &'a str,
    /// The detector field that names the table (`table`, `references`, `child-table`).
    pub table_field: &'static str,
    /// Each column, the field that names it, and its index when the field is a list.
    pub columns: Vec<(&'a str, &'static str, Option<usize>)>,
}

impl Detector {
    /// The tables the detector reads and the columns it names in each, with the fields that
    /// name them (for diagnostics).
    pub fn table_uses(&self) -> Vec<TableUse<'_>> {
        let detector = self;
        fn list<'a>(
            names: &'a [String],
            field: &'static str,
        ) -> impl Iterator<Item = (&'a str, &'static str, Option<usize>)> {
            names
                .iter()
                .enumerate()
                .map(move |(i, n)| (n.as_str(), field, Some(i)))
        }
        let one = |table: &'static str| {
            move |t| TableUse {
                table: t,
                table_field: table,
                columns: Vec::new(),
            }
        };
        match detector {
            // A `cache-consistency` rule's source is Redis; its rows' columns are checked on
            // their own source when it runs.
            Detector::Sql(_)
            | Detector::Plugin(_)
            | Detector::Promql(_)
            | Detector::CacheConsistency(_) => Vec::new(),
            Detector::NotNull(d) => vec![TableUse {
                columns: list(&d.columns, "columns")
                    .chain(list(&d.key, "key"))
                    .collect(),
                ..one("table")(&d.table)
            }],
            Detector::Unique(d) => vec![TableUse {
                columns: list(&d.columns, "columns")
                    .chain(list(d.key.as_deref().unwrap_or_default(), "key"))
                    .collect(),
                ..one("table")(&d.table)
            }],
            Detector::ForeignKey(d) => vec![
                TableUse {
                    columns: list(&d.columns, "columns")
                        .chain(list(&d.key, "key"))
                        .collect(),
                    ..one("table")(&d.table)
                },
                TableUse {
                    columns: list(&d.referenced_columns, "referenced-columns").collect(),
                    ..one("references")(&d.references)
                },
            ],
            Detector::AcceptedValues(d) => vec![TableUse {
                columns: std::iter::once((d.column.as_str(), "column", None))
                    .chain(list(&d.key, "key"))
                    .collect(),
                ..one("table")(&d.table)
            }],
            Detector::AggregateMatch(d) => vec![
                TableUse {
                    columns: std::iter::once((d.column.as_str(), "column", None))
                        .chain(list(&d.key, "key"))
                        .collect(),
                    ..one("table")(&d.table)
                },
                TableUse {
                    columns: list(&d.child_key, "child-key").collect(),
                    ..one("child-table")(&d.child_table)
                },
            ],
            // The left side's table, on the rule's own source; the right side's columns are
            // checked on its source when the rule runs.
            Detector::Reconcile(d) => match &d.left.table {
                Some(table) => vec![TableUse {
                    table,
                    table_field: "left.table",
                    columns: list(&d.key, "key")
                        .chain(list(&d.columns, "columns"))
                        .chain(
                            d.left
                                .changed_at
                                .iter()
                                .map(|c| (c.as_str(), "left.changed-at", None)),
                        )
                        .collect(),
                }],
                None => Vec::new(),
            },
            Detector::RowCount(d) => vec![one("table")(&d.table)],
            Detector::Freshness(d) => vec![TableUse {
                columns: vec![(d.column.as_str(), "column", None)],
                ..one("table")(&d.table)
            }],
        }
    }

    /// The tables the detector reads and the columns it names in each.
    pub fn columns_used(&self) -> Vec<(String, Vec<String>)> {
        self.table_uses()
            .into_iter()
            .map(|used| {
                (
                    used.table.to_owned(),
                    used.columns
                        .iter()
                        .map(|(c, _, _)| (*c).to_owned())
                        .collect(),
                )
            })
            .collect()
    }

    /// The column the detector compares with the clock, if it does (`freshness`).
    pub fn timestamp_column(&self) -> Option<TimestampColumn> {
        match self {
            Detector::Freshness(d) => Some(TimestampColumn {
                table: d.table.clone(),
                column: d.column.clone(),
                filter: d.filter.clone(),
            }),
            _ => None,
        }
    }

    /// The detector's `where`, for the built-ins that take one.
    pub fn filter(&self) -> Option<&str> {
        match self {
            Detector::NotNull(d) => d.filter.as_deref(),
            Detector::Unique(d) => d.filter.as_deref(),
            Detector::ForeignKey(d) => d.filter.as_deref(),
            Detector::AcceptedValues(d) => d.filter.as_deref(),
            Detector::RowCount(d) => d.filter.as_deref(),
            Detector::Freshness(d) => d.filter.as_deref(),
            Detector::AggregateMatch(d) => d.filter.as_deref(),
            Detector::Sql(_)
            | Detector::Plugin(_)
            | Detector::Promql(_)
            | Detector::CacheConsistency(_) => None,
            Detector::Reconcile(d) => d.left.filter.as_deref(),
        }
    }
}
