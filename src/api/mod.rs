//! The HTTP API (`ddcp serve --api HOST:PORT`, docs/api.md): how an app in any language reads
//! and writes the database while ddcp replicates it. JSON over HTTP/1.1, each request with the
//! state dir's bearer token; writes go through the DbActor, the one writer, so they serialize
//! with the changes pulled from peers; reads run on a connection of their own.

mod app_files;
mod json;
mod request_json;
mod routes;
mod server;
mod subscription_body;
mod token;

pub use app_files::{AppFiles, AppFilesError, MAX_APP_FILE_BYTES};
pub use routes::MAX_BODY_BYTES;
pub use server::{
    ApiState, Caller, LocalListener, MAX_CONNECTIONS, listen, listen_local, local_socket_path,
    serve, serve_local,
};
pub use token::{ApiToken, TokenError};
