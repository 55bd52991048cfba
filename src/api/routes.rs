//! The API's routes (docs/api.md): each request checked for its token, its body read within its
//! bound, and answered with JSON (NDJSON for rows); every error is one JSON object
//! `{"error": "..."}` with a 4xx or 5xx status.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value as Json, json};

use super::app_files::{AppFileMissing, AppFiles, MAX_APP_FILE_BYTES};
use super::json::{StatementJson, TransactionRequest, committed_json, row_to_json};
use super::server::{ApiState, Caller};
use super::subscription_body::SubscriptionBody;
use crate::app::AppError;
use crate::db::Db;
use crate::serve::ControlQuery;
use crate::status_report::{HealthJson, read_status};

/// Bytes a request's body may hold.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A response's body: whole, or streamed (a subscription's).
type Body = BoxBody<Bytes, std::convert::Infallible>;

/// An answer that is not a success: its status and message.
struct Refusal(StatusCode, String);

impl Refusal {
    fn bad(message: impl Into<String>) -> Refusal {
        Refusal(StatusCode::BAD_REQUEST, message.into())
    }
}

/// Answers one request.
pub async fn answer(
    state: Arc<ApiState>,
    request: Request<Incoming>,
    caller: Caller,
) -> Response<Body> {
    if let Some(files) = &state.app_files
        && request.method() == Method::GET
        && !request.uri().path().starts_with("/v1/")
    {
        return app_file(files, request.uri().path()).await;
    }
    let outcome = match authorized(&state, &request, caller) {
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

/// A file of the app's (`--app DIR`), served without the token: a page cannot carry one.
async fn app_file(files: &AppFiles, path: &str) -> Response<Body> {
    match files.find(path).await {
        Ok(file) => {
            let mut response = Response::new(Full::new(Bytes::from(file.bytes)).boxed());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(file.content_type));
            headers.insert(
                hyper::header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            // An edited page shows at the next load.
            headers.insert(
                hyper::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
            response
        }
        Err(AppFileMissing::NotFound) => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!("no file {path} in the app's directory") }),
        ),
        Err(AppFileMissing::TooLarge) => json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({ "error": format!("an app's file holds at most {MAX_APP_FILE_BYTES} bytes") }),
        ),
    }
}

/// Whether the request carries the token (`Authorization: Bearer <token>`).
fn authorized(
    state: &ApiState,
    request: &Request<Incoming>,
    caller: Caller,
) -> Result<(), Refusal> {
    if caller == Caller::Local {
        return Ok(());
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            // The scheme's name is case-insensitive (RFC 9110).
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        });
    match presented {
        Some(token)
            if state
                .token
                .as_ref()
                .is_some_and(|known| known.admits(token.trim())) =>
        {
            Ok(())
        }
        _ => Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "a request needs the header `Authorization: Bearer <token>`; `ddcp api-token` prints the token".into(),
        )),
    }
}

async fn route(state: &ApiState, request: Request<Incoming>) -> Result<Response<Body>, Refusal> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    match (path.as_str(), method) {
        ("/v1/status", Method::GET) => status(state).await,
        ("/v1/transactions", Method::POST) => transaction(state, request).await,
        ("/v1/queries", Method::POST) => query(state, request).await,
        ("/v1/subscriptions", Method::POST) => subscribe(state, request).await,
        (path, Method::GET) if path.starts_with("/v1/subscriptions/") => resume(
            state,
            &path["/v1/subscriptions/".len()..],
            request.uri().query(),
        ),
        ("/v1/status" | "/v1/transactions" | "/v1/queries" | "/v1/subscriptions", method) => {
            Err(Refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not a method of {path}"),
            ))
        }
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
) -> Result<Response<Body>, Refusal> {
    let body: TransactionRequest = read_json(request).await?;
    let statements = body
        .statements
        .into_iter()
        .enumerate()
        .map(|(index, statement)| {
            statement
                .into_statement()
                .map_err(|why| Refusal::bad(format!("statement {}: {why}", index + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let committed = state
        .app
        .transaction(statements)
        .await
        .map_err(app_refusal)?;
    Ok(json_response(StatusCode::OK, &committed_json(&committed)))
}

/// `POST /v1/queries`: one read query on the reader's connection; rows as NDJSON.
async fn query(state: &ApiState, request: Request<Incoming>) -> Result<Response<Body>, Refusal> {
    let body: StatementJson = read_json(request).await?;
    let statement = body.into_statement().map_err(Refusal::bad)?;
    let rows = state.app.query(statement).await.map_err(app_refusal)?;
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
    Ok(ndjson_response(Full::new(Bytes::from(lines)).boxed()))
}

/// `POST /v1/subscriptions`: the query's rows, then an event per row that enters, changes or
/// leaves its result, as NDJSON for as long as the client listens.
async fn subscribe(
    state: &ApiState,
    request: Request<Incoming>,
) -> Result<Response<Body>, Refusal> {
    let body: StatementJson = read_json(request).await?;
    let statement = body.into_statement().map_err(Refusal::bad)?;
    let subscription = state.app.subscribe(statement).await.map_err(app_refusal)?;
    Ok(ndjson_response(SubscriptionBody::new(subscription).boxed()))
}

/// `GET /v1/subscriptions/ID?from=N`: a subscription's events after change id N, then the ones
/// to come.
fn resume(state: &ApiState, id: &str, query: Option<&str>) -> Result<Response<Body>, Refusal> {
    let from = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("from="))
        .and_then(|from| from.parse::<u64>().ok())
        .ok_or_else(|| Refusal::bad("resume with ?from=N, the last change id received"))?;
    let subscription = state.app.resume(id, from).map_err(app_refusal)?;
    Ok(ndjson_response(SubscriptionBody::new(subscription).boxed()))
}

fn ndjson_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// `GET /v1/status`: what `ddcp status --json` says.
async fn status(state: &ApiState) -> Result<Response<Body>, Refusal> {
    let (db_file, extension) = (state.db_file.clone(), state.extension.clone());
    let read = tokio::task::spawn_blocking(move || {
        let mut db = Db::open(&db_file, &extension)?;
        let status = read_status(&mut db, &db_file);
        db.close()?;
        status
    })
    .await
    .map_err(|_| Refusal(StatusCode::INTERNAL_SERVER_ERROR, "status failed".into()))?;
    let mut status = read.map_err(|err| app_refusal(err.into()))?;
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
        .map_err(|err| match err.downcast_ref::<LengthLimitError>() {
            Some(_) => Refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a request's body holds at most {MAX_BODY_BYTES} bytes"),
            ),
            None => Refusal::bad(format!("the body did not arrive whole: {err}")),
        })?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|err| Refusal::bad(format!("not the JSON expected: {err}")))
}

/// How an app's failed request is answered: its own mistake is a 4xx, with SQLite's words;
/// anything else a 5xx.
fn app_refusal(err: AppError) -> Refusal {
    let status = match &err {
        AppError::Refused(_) => StatusCode::BAD_REQUEST,
        AppError::QueriesBusy | AppError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        AppError::TooManySubscriptions => StatusCode::TOO_MANY_REQUESTS,
        AppError::UnknownSubscription => StatusCode::NOT_FOUND,
        AppError::EventsNotKept => StatusCode::GONE,
        AppError::Database(_) | AppError::Failed(_) => {
            tracing::warn!(target: "ddcp", error = %err, "An API request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    Refusal(status, err.to_string())
}

fn json_response(status: StatusCode, body: &Json) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
