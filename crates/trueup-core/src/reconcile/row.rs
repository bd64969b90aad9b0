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

    /// Whether `columns` (the values from `start` on) are the same in `self` and `other`
    /// as each column compares them; a row too short for them is not the same. Two `COPY`
    /// rows are walked once, and only the values whose bytes differ are read.
    pub(crate) fn same_from(
        &self,
        other: &SideRow,
        start: usize,
        columns: &[Column],
    ) -> Result<bool> {
        let end = start + columns.len();
        if let (SideRow::Copy { row: a, .. }, SideRow::Copy { row: b, .. }) = (self, other) {
            if a.len().min(b.len()) < end {
                return Ok(false);
            }
            for (i, bytes_equal) in a.same_bytes(b).enumerate().take(end).skip(start) {
                if !bytes_equal && !same(&a.value(i)?, &b.value(i)?, &columns[i - start]) {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        for (i, column) in (start..end).zip(columns) {
            let equal = match (self.value(i)?, other.value(i)?) {
                (Some(a), Some(b)) => same(&a, &b, column),
                _ => false,
            };
            if !equal {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// All the row's values.
    pub(crate) fn into_values(self) -> Result<Vec<Value>> {
        match self {
            SideRow::Values(values) => Ok(values),
            SideRow::Copy { row, .. } => row.values(),
        }
    }
}
