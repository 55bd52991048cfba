//! The API's JSON: statements with their parameters in (read in request_json.rs), rows and
//! values out. A value is JSON's own where it can be (null, a number, a string; true and false
//! go in as 1 and 0, as SQLite keeps them), and a blob is `{"blob": "<hex>"}` both ways.

use serde_json::{Value as Json, json};

pub use super::request_json::{StatementJson, TransactionRequest};
use crate::db::{AppRows, AppStatement, Committed};
use crate::sync::Value;

impl StatementJson {
    /// The statement, its parameters as SQLite values; why not, in words.
    pub fn into_statement(self) -> Result<AppStatement, String> {
        let (sql, params) = self.into_parts()?;
        Ok(AppStatement { sql, params })
    }
}

/// A SQLite value as JSON.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Integer(int) => json!(int),
        // JSON has no NaN or infinity.
        Value::Real(real) if real.is_finite() => json!(real),
        Value::Real(_) => Json::Null,
        Value::Text(text) => json!(text),
        Value::Blob(bytes) => json!({ "blob": hex::encode(bytes) }),
        // TEXT that is not UTF-8: its bytes, as SQLite holds them.
        Value::RawText(bytes) => json!({ "text_bytes": hex::encode(bytes) }),
    }
}

/// A row as a JSON array.
pub fn row_to_json(row: &[Value]) -> Json {
    Json::Array(row.iter().map(value_to_json).collect())
}

/// What a committed transaction answers.
pub fn committed_json(committed: &Committed) -> Json {
    let results: Vec<Json> = committed
        .results
        .iter()
        .map(|done| {
            let mut result = json!({ "rows_affected": done.rows_affected });
            if let Some(AppRows { columns, rows }) = &done.rows {
                result["columns"] = json!(columns);
                result["rows"] = Json::Array(rows.iter().map(|row| row_to_json(row)).collect());
            }
            result
        })
        .collect();
    json!({ "results": results, "db_version": committed.db_version.0 })
}

#[cfg(test)]
mod tests {
    use super::super::request_json::value_from_json;
    use super::*;

    #[test]
    fn values_round_trip_and_bad_ones_are_named() {
        let mut request: TransactionRequest = serde_json::from_str(
            r#"{"statements": ["select 1", {"sql": "insert into t values (?1, ?2, ?3, ?4, ?5)",
                "params": [null, 7, 1.5, "x", {"blob": "00ff"}]}]}"#,
        )
        .unwrap();
        let statement = request.statements.remove(1).into_statement().unwrap();
        assert_eq!(
            statement.params,
            [
                Value::Null,
                Value::Integer(7),
                Value::Real(1.5),
                Value::Text("x".into()),
                Value::Blob(vec![0, 255])
            ]
        );
        for value in &statement.params {
            assert_eq!(value_from_json(&value_to_json(value)).unwrap(), *value);
        }
        let mut bad: TransactionRequest = serde_json::from_str(
            r#"{"statements": [{"sql": "select ?1, ?2", "params": [1, [2]]}]}"#,
        )
        .unwrap();
        assert_eq!(
            bad.statements.remove(0).into_statement().unwrap_err(),
            "parameter 2: an array: SQLite takes one value per parameter"
        );
        assert!(serde_json::from_str::<TransactionRequest>(r#"{"statement": []}"#).is_err());
    }

    #[test]
    fn a_statement_of_the_wrong_shape_is_named() {
        let error = |body: &str| {
            serde_json::from_str::<TransactionRequest>(body)
                .unwrap_err()
                .to_string()
        };
        assert!(
            error(r#"{"statements": [{"sq": "select 1"}]}"#)
                .starts_with("unknown field `sq`, expected `sql` or `params`"),
        );
        assert!(error(r#"{"statements": [{"params": []}]}"#).starts_with("missing field `sql`"));
        assert!(
            error(r#"{"statements": [{"sql": "select 1", "sql": "select 2"}]}"#)
                .starts_with("duplicate field `sql`")
        );
        assert!(error(r#"{"statements": [7]}"#).starts_with(
            r#"invalid type: integer `7`, expected a statement: a string of SQL, or {"sql""#
        ));
        // An escaped name is still the name.
        let request: TransactionRequest =
            serde_json::from_str(r#"{"statements": [{"s\u0071l": "select 1"}]}"#).unwrap();
        assert!(
            matches!(&request.statements[0], StatementJson::WithParams { sql, params }
            if sql == "select 1" && params.is_empty())
        );
    }
}
