//! The API's request bodies as JSON: a transaction's statements, a statement with its
//! parameters, a parameter as a SQLite value. What an app (or whoever holds the token) sends,
//! read with serde alone, so that the fuzzer reads them as ddcp does
//! (fuzz/fuzz_targets/api_json.rs).

use std::fmt;

use ddcp_sync::Value;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value as Json;

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
    /// The statement's SQL and its parameters as SQLite values; why not, in words.
    pub fn into_parts(self) -> Result<(String, Vec<Value>), String> {
        match self {
            StatementJson::Sql(sql) => Ok((sql, Vec::new())),
            StatementJson::WithParams { sql, params } => {
                let params = params
                    .iter()
                    .enumerate()
                    .map(|(index, param)| {
                        value_from_json(param)
                            .map_err(|why| format!("parameter {}: {why}", index + 1))
                    })
                    .collect::<Result<_, _>>()?;
                Ok((sql, params))
            }
        }
    }
}

/// A JSON parameter as a SQLite value.
pub fn value_from_json(json: &Json) -> Result<Value, String> {
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
