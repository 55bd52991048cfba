//! The API's JSON: statements with their parameters in, rows and values out. A value is JSON's
//! own where it can be (null, a number, a string; true and false go in as 1 and 0, as SQLite
//! keeps them), and a blob is `{"blob": "<hex>"}` both ways.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Value as Json, json};

use crate::db::{AppRows, AppStatement, Committed};
use crate::sync::Value;

/// `POST /v1/transactions`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionRequest {
    /// The statements, in order: each a string of SQL, or `{"sql", "params"}`.
    pub statements: Vec<StatementJson>,
}

/// A statement: SQL alone, or with its parameters (`?1`, `?2`, ... in order).
#[derive(Debug)]
pub enum StatementJson {
    /// SQL without parameters.
    Sql(String),
    /// SQL with parameters.
    WithParams {
        /// The SQL.
        sql: String,
        /// Its parameters.
        params: Vec<Json>,
    },
}

/// Read by hand rather than as an untagged enum, which buffers each statement before it tries
/// each form (a tenth of a batch's time through the API) and answers a mistake with "did not
/// match any variant".
impl<'de> Deserialize<'de> for StatementJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatementVisitor)
    }
}

struct StatementVisitor;

impl<'de> Visitor<'de> for StatementVisitor {
    type Value = StatementJson;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(r#"a statement: a string of SQL, or {"sql": "...", "params": [...]}"#)
    }

    fn visit_str<E: de::Error>(self, sql: &str) -> Result<StatementJson, E> {
        Ok(StatementJson::Sql(sql.to_owned()))
    }

    fn visit_string<E: de::Error>(self, sql: String) -> Result<StatementJson, E> {
        Ok(StatementJson::Sql(sql))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StatementJson, A::Error> {
        const FIELDS: &[&str] = &["sql", "params"];
        let (mut sql, mut params) = (None, None);
        while let Some(field) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match field.as_ref() {
                "sql" if sql.is_some() => return Err(de::Error::duplicate_field("sql")),
                "sql" => sql = Some(map.next_value()?),
                "params" if params.is_some() => return Err(de::Error::duplicate_field("params")),
                "params" => params = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
        }
        Ok(StatementJson::WithParams {
            sql: sql.ok_or_else(|| de::Error::missing_field("sql"))?,
            params: params.unwrap_or_default(),
        })
    }
}

impl StatementJson {
    /// The statement, its parameters as SQLite values; why not, in words.
    pub fn into_statement(self) -> Result<AppStatement, String> {
        match self {
            StatementJson::Sql(sql) => Ok(AppStatement {
                sql,
                params: Vec::new(),
            }),
            StatementJson::WithParams { sql, params } => Ok(AppStatement {
                sql,
                params: params
                    .iter()
                    .enumerate()
                    .map(|(index, param)| {
                        value_from_json(param)
                            .map_err(|why| format!("parameter {}: {why}", index + 1))
                    })
                    .collect::<Result<_, _>>()?,
            }),
        }
    }
}

/// A JSON parameter as a SQLite value.
fn value_from_json(json: &Json) -> Result<Value, String> {
    match json {
        Json::Null => Ok(Value::Null),
        Json::Bool(flag) => Ok(Value::Integer(i64::from(*flag))),
        Json::Number(number) => match (number.as_i64(), number.as_f64()) {
            (Some(int), _) => Ok(Value::Integer(int)),
            (None, Some(real)) => Ok(Value::Real(real)),
            (None, None) => Err(format!("{number} is out of SQLite's range")),
        },
        Json::String(text) => Ok(Value::Text(text.clone())),
        Json::Object(object) => match (object.len(), object.get("blob")) {
            (1, Some(Json::String(hex_text))) => hex::decode(hex_text)
                .map(Value::Blob)
                .map_err(|_| "a blob is {\"blob\": \"<hex>\"}".to_string()),
            _ => Err("an object that is not {\"blob\": \"<hex>\"}".into()),
        },
        Json::Array(_) => Err("an array: SQLite takes one value per parameter".into()),
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
