//! The handlers: each checks the token, reads and checks its input completely, then runs one
//! controller operation on a blocking thread. Input is checked before the controller is
//! touched, so a bad request changes nothing and journals nothing.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use smartticket_acceptance::access::{
    ACCESS_LIST_ENTRIES_MAX, Controller, Doors, EVENTS_LIMIT_MAX, Grant, Identifier, LIST_PAGE_LIMIT_MAX,
};
use smartticket_core::Timestamp;

use crate::auth::Authorized;
use crate::body::JsonObject;
use crate::problem::Problem;
use crate::{AppState, PAGE_LIMIT_DEFAULT};

/// The header naming who makes a change.
const ACTOR_HEADER: &str = "x-actor";
/// The actor of a change when the caller names none.
const ACTOR_DEFAULT: &str = "api";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/identifiers", get(list))
        .route("/api/v1/identifiers/{identifier}", get(get_one).put(put_one).delete(delete_one))
        .route("/api/v1/events", get(events))
        .route("/api/v1/present", post(present))
        .fallback(no_route)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn no_route() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no-route", "There is no such endpoint")
}

/// An identifier and its grant, as the API shows them.
#[derive(Serialize)]
struct Entry<'a> {
    identifier: Identifier,
    #[serde(flatten)]
    grant: &'a Grant,
}

async fn list(
    _: Authorized,
    State(state): State<AppState>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let query = query_map(query, &["offset", "limit"])?;
    let offset: usize = query_number(&query, "offset", 0, ACCESS_LIST_ENTRIES_MAX as usize)?;
    let limit: usize = query_number(&query, "limit", PAGE_LIMIT_DEFAULT as usize, LIST_PAGE_LIMIT_MAX)?;
    if limit == 0 {
        return Err(Problem::invalid_field("limit", "must be at least 1"));
    }
    blocking(&state, move |controller, _| {
        let items: Vec<Entry<'_>> = controller
            .list(offset, limit)
            .into_iter()
            .map(|(identifier, grant)| Entry { identifier: *identifier, grant })
            .collect();
        let total = controller.access_list().len();
        Ok(json!({ "items": items, "offset": offset, "limit": limit, "total": total }))
    })
    .await
    .map(Json)
}

async fn get_one(
    _: Authorized,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let identifier = path_identifier(path)?;
    blocking(&state, move |controller, _| match controller.get(&identifier) {
        Some(grant) => Ok(json!(Entry { identifier, grant })),
        None => Err(Problem::not_found(format!("{identifier} is not on the list"))),
    })
    .await
    .map(Json)
}

async fn put_one(
    _: Authorized,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let identifier = path_identifier(path)?;
    let actor = actor(&headers)?;
    let mut object = JsonObject::parse(&headers, body, &["label", "valid_from", "valid_until", "doors", "blocked"])?;
    let grant = Grant {
        label: object.required("label")?,
        valid_from: object.optional::<Timestamp>("valid_from")?,
        valid_until: object.optional::<Timestamp>("valid_until")?,
        doors: object.optional::<Doors>("doors")?,
        blocked: object.optional("blocked")?.unwrap_or(false),
    };
    // Checked here too, so the caller hears about it before anything is locked.
    grant.check().map_err(|error| Problem::invalid_field(error.field(), error.to_string()))?;
    blocking(&state, move |controller, now| {
        let changed = controller.put(identifier, grant, &actor, now)?;
        let status = if changed.previous.is_some() { StatusCode::OK } else { StatusCode::CREATED };
        let grant = controller.get(&identifier).ok_or_else(Problem::internal)?;
        let mut body = json!(Entry { identifier, grant });
        if let Some(object) = body.as_object_mut() {
            object.insert("sequence".to_owned(), json!(changed.sequence));
            object.insert("revision".to_owned(), json!(changed.revision));
        }
        Ok((status, Json(body)).into_response())
    })
    .await
}

async fn delete_one(
    _: Authorized,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    let identifier = path_identifier(path)?;
    let actor = actor(&headers)?;
    blocking(&state, move |controller, now| match controller.remove(identifier, &actor, now)? {
        Some(changed) => {
            Ok(json!({ "identifier": identifier, "sequence": changed.sequence, "revision": changed.revision }))
        }
        None => Err(Problem::not_found(format!("{identifier} is not on the list"))),
    })
    .await
    .map(Json)
}

async fn events(
    _: Authorized,
    State(state): State<AppState>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let query = query_map(query, &["since", "limit"])?;
    let since: u64 = query_number(&query, "since", 0, u64::MAX)?;
    let limit: u32 = query_number(&query, "limit", PAGE_LIMIT_DEFAULT, EVENTS_LIMIT_MAX)?;
    if limit == 0 {
        return Err(Problem::invalid_field("limit", "must be at least 1"));
    }
    blocking(&state, move |controller, _| {
        let events = controller.events(since, limit)?;
        // Where the next page starts: pass it back as `since`.
        let next_since = events.last().map_or(since, |event| event.sequence);
        Ok(json!({ "events": events, "next_since": next_since }))
    })
    .await
    .map(Json)
}

/// What a reader sends: the identifier it read and its door.
async fn present(
    _: Authorized,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let mut object = JsonObject::parse(&headers, body, &["identifier", "door"])?;
    let identifier: Identifier = object.required("identifier")?;
    let door: u8 = object.required("door")?;
    blocking(&state, move |controller, now| {
        let presented = controller.present(identifier, door, now)?;
        let mut body = json!({ "sequence": presented.sequence, "identifier": identifier, "door": door });
        if let (Some(object), Value::Object(decision)) = (body.as_object_mut(), json!(presented.decision)) {
            object.extend(decision);
        }
        Ok(body)
    })
    .await
    .map(Json)
}

/// Runs `work` on the controller on a blocking thread (journal appends and list writes wait
/// for `fsync`), with the time read under the lock so journal times follow its order.
async fn blocking<T, F>(state: &AppState, work: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce(&mut Controller, Timestamp) -> Result<T, Problem> + Send + 'static,
{
    let controller = Arc::clone(&state.controller);
    let clock = Arc::clone(&state.clock);
    let task = tokio::task::spawn_blocking(move || {
        // A panic mid-operation leaves the controller in an unknown state: refuse everything
        // until the process is restarted and the journal recovers.
        let mut controller = controller.lock().map_err(|_| {
            tracing::error!("access: the controller failed earlier; restart the service");
            Problem::internal()
        })?;
        let now = clock.now();
        work(&mut controller, now)
    });
    task.await.map_err(|error| {
        tracing::error!(%error, "access: a request's task failed");
        Problem::internal()
    })?
}

fn path_identifier(path: Result<Path<String>, PathRejection>) -> Result<Identifier, Problem> {
    let Path(text) = path.map_err(|rejection| Problem::invalid_field("identifier", rejection.body_text()))?;
    text.parse().map_err(|error: smartticket_acceptance::access::IdentifierError| {
        Problem::invalid_field("identifier", error.to_string())
    })
}

fn actor(headers: &HeaderMap) -> Result<String, Problem> {
    match headers.get(ACTOR_HEADER) {
        None => Ok(ACTOR_DEFAULT.to_owned()),
        // The controller checks length and characters; here only that it is text.
        Some(value) => {
            value.to_str().map(str::to_owned).map_err(|_| Problem::invalid_field(ACTOR_HEADER, "must be visible ASCII"))
        }
    }
}

fn query_map(
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    allowed: &[&str],
) -> Result<BTreeMap<String, String>, Problem> {
    let Query(query) = query.map_err(|rejection| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-query", "The query string is not valid")
            .detail(rejection.body_text())
    })?;
    if let Some(unknown) = query.keys().find(|key| !allowed.contains(&key.as_str())) {
        let expected = allowed.join(", ");
        return Err(Problem::invalid_field(unknown, format!("unknown parameter; the parameters are: {expected}")));
    }
    Ok(query)
}

fn query_number<T: FromStr + PartialOrd + std::fmt::Display>(
    query: &BTreeMap<String, String>,
    name: &str,
    default: T,
    max: T,
) -> Result<T, Problem> {
    let Some(text) = query.get(name) else {
        return Ok(default);
    };
    match text.parse::<T>() {
        Ok(number) if number <= max => Ok(number),
        _ => Err(Problem::invalid_field(name, format!("must be a whole number from 0 to {max}"))),
    }
}
