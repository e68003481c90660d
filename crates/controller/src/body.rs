//! Request bodies: a JSON object read field by field, so every refusal names its field
//! (serde's own messages give a line and column, not a name). Unknown fields are refused too:
//! a misspelt `valid_untill` must not silently mean "no end".

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::problem::Problem;

/// A request body that is a JSON object.
pub(crate) struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// Reads a JSON object whose fields are all among `allowed`.
    pub(crate) fn parse(
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
        allowed: &[&str],
    ) -> Result<JsonObject, Problem> {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.split(';').next().is_some_and(|kind| kind.trim() == "application/json"));
        if !is_json {
            let problem = Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "The request body must be application/json",
            );
            return Err(problem);
        }
        let bytes = body.map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "The request body is larger than allowed")
                    .detail(format!("at most {} bytes", crate::BODY_BYTES_MAX))
            }
            _ => Problem::new(StatusCode::BAD_REQUEST, "invalid-body", "The request body could not be read"),
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|error| {
            Problem::new(StatusCode::BAD_REQUEST, "invalid-json", "The request body is not valid JSON")
                .detail(error.to_string())
        })?;
        let Value::Object(object) = value else {
            return Err(Problem::invalid_field("body", "expected a JSON object"));
        };
        if let Some(unknown) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            let expected = allowed.join(", ");
            return Err(Problem::invalid_field(unknown, format!("unknown field; the fields are: {expected}")));
        }
        Ok(JsonObject(object))
    }

    /// `field` as a `T`; `None` when absent or null.
    pub(crate) fn optional<T: DeserializeOwned>(&mut self, field: &str) -> Result<Option<T>, Problem> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|error| Problem::invalid_field(field, error.to_string())),
        }
    }

    /// `field` as a `T`; absent or null is refused.
    pub(crate) fn required<T: DeserializeOwned>(&mut self, field: &str) -> Result<T, Problem> {
        self.optional(field)?.ok_or_else(|| Problem::invalid_field(field, "this field is required"))
    }
}
