//! The API's routes (docs/api.md): each request checked for its token, its body read within its
//! bound, and answered with JSON (NDJSON for rows); every error is one JSON object
//! `{"error": "..."}` with a 4xx or 5xx status.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value as Json, json};

use super::json::{StatementJson, TransactionRequest, committed_json, row_to_json};
use super::server::ApiState;
use crate::db::{Db, DbError};
use crate::db_actor::DbCallError;
use crate::serve::ControlQuery;
use crate::status_report::{HealthJson, read_status};

/// Bytes a request's body may hold.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// An answer that is not a success: its status and message.
struct Refusal(StatusCode, String);

impl Refusal {
    fn bad(message: impl Into<String>) -> Refusal {
        Refusal(StatusCode::BAD_REQUEST, message.into())
    }
}

/// Answers one request.
pub async fn answer(state: Arc<ApiState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let outcome = match authorized(&state, &request) {
        Ok(()) => route(&state, request).await,
        Err(refusal) => Err(refusal),
    };
    match outcome {
        Ok(response) => response,
        Err(Refusal(status, message)) => {
            let mut response = json_response(status, &json!({ "error": message }));
            if status == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

/// Whether the request carries the token (`Authorization: Bearer <token>`).
fn authorized(state: &ApiState, request: &Request<Incoming>) -> Result<(), Refusal> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(token) if state.token.admits(token.trim()) => Ok(()),
        _ => Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "a request needs the header `Authorization: Bearer <token>`; `ddcp api-token` prints the token".into(),
        )),
    }
}

async fn route(
    state: &Arc<ApiState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    match (path.as_str(), method) {
        ("/v1/status", Method::GET) => status(state).await,
        ("/v1/transactions", Method::POST) => transaction(state, request).await,
        ("/v1/queries", Method::POST) => query(state, request).await,
        ("/v1/status" | "/v1/transactions" | "/v1/queries", method) => Err(Refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not a method of {path}"),
        )),
        _ => Err(Refusal(
            StatusCode::NOT_FOUND,
            format!("no route {path}: see docs/api.md"),
        )),
    }
}

/// `POST /v1/transactions`: the statements in one transaction, through the one writer.
async fn transaction(
    state: &ApiState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let body: TransactionRequest = read_json(request).await?;
    let statements = body
        .statements
        .iter()
        .enumerate()
        .map(|(index, statement)| {
            statement
                .to_statement()
                .map_err(|why| Refusal::bad(format!("statement {}: {why}", index + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    match state.db.app_transaction(statements).await {
        Ok(committed) => Ok(json_response(StatusCode::OK, &committed_json(&committed))),
        Err(err) => Err(db_refusal(err)),
    }
}

/// `POST /v1/queries`: one read query on the reader's connection; rows as NDJSON.
async fn query(
    state: &Arc<ApiState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let body: StatementJson = read_json(request).await?;
    let statement = body.to_statement().map_err(Refusal::bad)?;
    let reader = Arc::clone(&state.reader);
    let rows = tokio::task::spawn_blocking(move || reader.lock().query(&statement))
        .await
        .map_err(|_| Refusal(StatusCode::INTERNAL_SERVER_ERROR, "the query failed".into()))?
        .map_err(|err| db_refusal(DbCallError::Db(err)))?;
    let mut lines = Vec::new();
    let mut line = |json: Json| {
        // Serializing a JSON value into memory cannot fail.
        let _ = serde_json::to_writer(&mut lines, &json);
        lines.push(b'\n');
    };
    line(json!({ "columns": rows.columns }));
    for row in &rows.rows {
        line(json!({ "row": row_to_json(row) }));
    }
    line(json!({ "eoq": { "rows": rows.rows.len() } }));
    let mut response = Response::new(Full::new(Bytes::from(lines)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// `GET /v1/status`: what `ddcp status --json` says.
async fn status(state: &ApiState) -> Result<Response<Full<Bytes>>, Refusal> {
    let (db_file, extension) = (state.db_file.clone(), state.extension.clone());
    let read = tokio::task::spawn_blocking(move || {
        let mut db = Db::open(&db_file, &extension)?;
        let status = read_status(&mut db, &db_file);
        db.close()?;
        status
    })
    .await
    .map_err(|_| Refusal(StatusCode::INTERNAL_SERVER_ERROR, "status failed".into()))?;
    let mut status = read.map_err(|err| db_refusal(DbCallError::Db(err)))?;
    status.serving = true;
    if let Some(supervisor) = &state.supervisor {
        let health = ractor::call!(supervisor, ControlQuery::Health).unwrap_or_default();
        status.replication = health.into_iter().map(HealthJson::from).collect();
    }
    Ok(json_response(
        StatusCode::OK,
        &serde_json::to_value(&status).unwrap_or_default(),
    ))
}

/// The body as JSON of type `T`, within [`MAX_BODY_BYTES`].
async fn read_json<T: serde::de::DeserializeOwned>(
    request: Request<Incoming>,
) -> Result<T, Refusal> {
    let body = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| {
            Refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a request's body holds at most {MAX_BODY_BYTES} bytes"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|err| Refusal::bad(format!("not the JSON expected: {err}")))
}

/// How a database error is answered: the app's mistake is a 400, with SQLite's words;
/// anything else a 5xx.
fn db_refusal(err: DbCallError) -> Refusal {
    match err {
        DbCallError::Db(err @ (DbError::AppStatement { .. } | DbError::AppStatementCount(_))) => {
            Refusal::bad(err.to_string())
        }
        DbCallError::Gone => Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is not running (ddcp serve is stopping or restarting it)".into(),
        ),
        DbCallError::Db(err) => {
            tracing::warn!(target: "ddcp", error = %err, "An API request failed");
            Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the database failed: {err}"),
            )
        }
    }
}

fn json_response(status: StatusCode, body: &Json) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
