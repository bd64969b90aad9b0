//! The check plugin for the component-model ABI: rows arrive lifted into guest values.

#[path = "../../shared/checks.rs"]
mod checks;

wit_bindgen::generate!({ path: "../wit", world: "checker" });

use trueup::bench::types::Value;

struct Checker;

fn finding(id: i64, message: String) -> Finding {
    Finding {
        key: vec![Value::Int(id)],
        message,
    }
}

fn id_of(row: &[Value]) -> i64 {
    match row.first() {
        Some(Value::Int(id)) => *id,
        _ => -1,
    }
}

impl Guest for Checker {
    fn check_trivial(rows: Vec<Row>) -> Vec<Finding> {
        let mut out = Vec::new();
        for row in &rows {
            let id = id_of(row);
            if checks::flag_id(id) {
                out.push(finding(id, "flagged id".into()));
            } else if row.iter().any(|v| matches!(v, Value::Null)) {
                out.push(finding(id, "row has a null".into()));
            }
        }
        out
    }

    fn check_email(rows: Vec<Row>) -> Vec<Finding> {
        let mut out = Vec::new();
        for row in &rows {
            if let Some(Value::Text(s)) = row.get(1)
                && !checks::is_email(s)
            {
                out.push(finding(id_of(row), format!("not an email address: {s}")));
            }
        }
        out
    }
}

export!(Checker);
