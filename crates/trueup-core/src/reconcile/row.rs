//! A row of one side of a comparison: its values, or PostgreSQL's `COPY` bytes of them read
//! only as far as the comparison needs (its key, and the columns whose bytes differ).

use std::borrow::Cow;

use super::compare::{Column, same};
use crate::Result;
use crate::source::CopyRow;
use crate::value::Value;

/// A side's row: key first, then the compared columns (and the `trueup_recent` flag).
#[derive(Debug)]
pub(crate) enum SideRow {
    Values(Vec<Value>),
    /// A `COPY` row and its key, read out of it.
    Copy {
        key: Vec<Value>,
        row: CopyRow,
    },
}

impl SideRow {
    /// The row's key: its first `width` values.
    pub(crate) fn key(&self, width: usize) -> &[Value] {
        match self {
            SideRow::Values(values) => &values[..width.min(values.len())],
            SideRow::Copy { key, .. } => key,
        }
    }

    /// Value `index` of the row; `None` past its end.
    fn value(&self, index: usize) -> Result<Option<Cow<'_, Value>>> {
        Ok(match self {
            SideRow::Values(values) => values.get(index).map(Cow::Borrowed),
            SideRow::Copy { row, .. } if index < row.len() => Some(Cow::Owned(row.value(index)?)),
            SideRow::Copy { .. } => None,
        })
    }

    /// Whether value `index` is the same in `self` and `other` as `column` compares it
    /// (both missing counts as not the same). Two `COPY` rows with the same bytes there
    /// are, without reading them.
    pub(crate) fn same_at(&self, other: &SideRow, index: usize, column: &Column) -> Result<bool> {
        if let (SideRow::Copy { row: a, .. }, SideRow::Copy { row: b, .. }) = (self, other)
            && a.same_bytes(b, index)
        {
            return Ok(true);
        }
        Ok(match (self.value(index)?, other.value(index)?) {
            (Some(a), Some(b)) => same(&a, &b, column),
            _ => false,
        })
    }

    /// All the row's values.
    pub(crate) fn into_values(self) -> Result<Vec<Value>> {
        match self {
            SideRow::Values(values) => Ok(values),
            SideRow::Copy { row, .. } => row.values(),
        }
    }
}
