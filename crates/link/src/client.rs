//! The back office's HTTP API as a validator uses it: `GET /api/v1/lists/{kind}?since=V`
//! and `POST /api/v1/validators/batches`. One method per call; no retrying here.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use smartticket_acceptance::journal::Batch;
use smartticket_acceptance::lists::ListKind;

use crate::LinkError;

/// Largest list file downloaded: a greenlist of several million media (56 bytes each) with
/// room to spare. Checked against `Content-Length` first and again while reading.
pub const LIST_FILE_BYTES_MAX: u64 = 1 << 30;
/// Longest one request may take, a full list download included: over a slow mobile link a
/// few hundred MB take minutes, and a hung connection must not hold uploads forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How long connecting may take before the round is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JSON answer or error document read: an acknowledgement is a few hundred bytes.
const ANSWER_BYTES_MAX: u64 = 64 * 1024;
/// Most bytes of an error body kept for the message.
const ERROR_BODY_CHARS_MAX: usize = 512;

/// A list download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// A signed list file: full (`base_version` 0) or a delta from `base_version`.
    File {
        /// The version it makes current.
        version: u64,
        /// The version it applies to; 0 for a full list.
        base_version: u64,
        /// The file.
        bytes: Vec<u8>,
    },
    /// The version asked about is the latest.
    UpToDate,
}

/// The back office's answer to a batch (the fleet's `BatchAck`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BatchAck {
    /// The batch.
    pub batch_id: String,
    /// The validator.
    pub device_id: String,
    /// The batch's first sequence.
    pub first_sequence: u64,
    /// The batch's last sequence.
    pub last_sequence: u64,
    /// Every record of the device up to here is stored.
    pub contiguous_through: u64,
}

/// What the back office holds of one validator's journal (the fleet's `DeviceUploads`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeviceUploads {
    /// Every record up to this sequence is stored.
    pub contiguous_through: u64,
    /// Records stored, each once.
    pub records_stored: u64,
    /// Distinct batches received.
    pub batches_received: u64,
}

/// The back office, reached over HTTP with a carrier's or operator's token.
#[derive(Clone)]
pub struct BackOffice {
    client: reqwest::Client,
    base: url::Url,
    token: SecretString,
}

impl std::fmt::Debug for BackOffice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("BackOffice").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Problem {
    #[serde(rename = "type", default)]
    type_uri: String,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

impl BackOffice {
    /// A client for the back office at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: SecretString) -> Result<BackOffice, LinkError> {
        let mut base = url::Url::parse(base).map_err(|_| LinkError::BadUrl(base.to_owned()))?;
        if base.scheme() != "http" || base.cannot_be_a_base() {
            return Err(LinkError::BadUrl(base.to_string()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(LinkError::Unreachable)?;
        Ok(BackOffice { client, base, token })
    }

    fn url(&self, path: &str) -> Result<url::Url, LinkError> {
        self.base.join(path).map_err(|_| LinkError::BadUrl(format!("{}{path}", self.base)))
    }

    /// Downloads `kind`: the delta from `since`, or the full list when `since` is `None`.
    pub async fn fetch_list(&self, kind: ListKind, since: Option<u64>) -> Result<Fetched, LinkError> {
        let mut url = self.url(&format!("api/v1/lists/{kind}"))?;
        if let Some(version) = since {
            url.query_pairs_mut().append_pair("since", &version.to_string());
        }
        let response = self
            .client
            .get(url)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(LinkError::Unreachable)?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            204 => return Ok(Fetched::UpToDate),
            _ => return Err(problem(response, since, None).await),
        }
        let version = header_u64(&response, "x-list-version")?;
        let base_version = header_u64(&response, "x-list-base-version")?;
        let bytes = read_bounded(response, LIST_FILE_BYTES_MAX).await?;
        Ok(Fetched::File { version, base_version, bytes })
    }

    /// Uploads one batch of journal records and returns the acknowledgement, after checking
    /// it names this batch.
    pub async fn upload(&self, batch: &Batch) -> Result<BatchAck, LinkError> {
        let batch_id = batch.id.to_string();
        let device_id = hex::encode(batch.id.device_id.0);
        let body = serde_json::json!({
            "batch_id": batch_id,
            "device_id": device_id,
            "first_sequence": batch.id.sequence_first,
            "last_sequence": batch.id.sequence_last,
            "records": batch.records.iter().map(|record| BASE64.encode(&record.payload)).collect::<Vec<_>>(),
        });
        let response = self
            .client
            .post(self.url("api/v1/validators/batches")?)
            .bearer_auth(self.token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(LinkError::Unreachable)?;
        if response.status().as_u16() != 200 {
            return Err(problem(response, None, Some(&batch_id)).await);
        }
        let ack: BatchAck = json_bounded(response).await?;
        if ack.batch_id != batch_id
            || ack.device_id != device_id
            || ack.first_sequence != batch.id.sequence_first
            || ack.last_sequence != batch.id.sequence_last
        {
            return Err(LinkError::BadAnswer(format!("the acknowledgement names another batch: {ack:?}")));
        }
        Ok(ack)
    }
}

impl BackOffice {
    /// What the back office holds of `device_id`'s journal (hex, as in uploads); `None` when
    /// the device never uploaded.
    pub async fn device_uploads(&self, device_id: &str) -> Result<Option<DeviceUploads>, LinkError> {
        let response = self
            .client
            .get(self.url(&format!("api/v1/validators/{device_id}"))?)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(LinkError::Unreachable)?;
        match response.status().as_u16() {
            200 => Ok(Some(json_bounded(response).await?)),
            404 => Ok(None),
            _ => Err(problem(response, None, None).await),
        }
    }
}

/// Reads a body of at most `max` bytes: checked against `Content-Length` first and again
/// while reading, so a broken or hostile server cannot make the device allocate without end.
async fn read_bounded(mut response: reqwest::Response, max: u64) -> Result<Vec<u8>, LinkError> {
    if response.content_length().is_some_and(|length| length > max) {
        return Err(LinkError::TooLarge { max });
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(LinkError::Unreachable)? {
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(LinkError::TooLarge { max });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn json_bounded<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, LinkError> {
    let bytes = read_bounded(response, ANSWER_BYTES_MAX).await?;
    serde_json::from_slice(&bytes).map_err(|error| LinkError::BadAnswer(format!("not the JSON expected: {error}")))
}

fn header_u64(response: &reqwest::Response, name: &str) -> Result<u64, LinkError> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| LinkError::BadAnswer(format!("no {name} header")))
}

/// Maps an error answer (an RFC 9457 problem document, usually) to a [`LinkError`].
async fn problem(response: reqwest::Response, since: Option<u64>, batch_id: Option<&str>) -> LinkError {
    let status = response.status().as_u16();
    let text = match read_bounded(response, ANSWER_BYTES_MAX).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => return error,
    };
    let (type_uri, detail) = match serde_json::from_str::<Problem>(&text) {
        Ok(problem) => (problem.type_uri, problem.detail.or(problem.title).unwrap_or_default()),
        Err(_) => (String::new(), text.chars().take(ERROR_BODY_CHARS_MAX).collect()),
    };
    let slug = type_uri.rsplit('/').next().unwrap_or_default();
    match (status, slug) {
        (401 | 403, _) => LinkError::Refused { status, detail },
        (409, "list-version-unknown") => LinkError::VersionUnknown(since.unwrap_or(0)),
        (409, "batch-conflict") => LinkError::Conflict { batch_id: batch_id.unwrap_or_default().to_owned(), detail },
        (503, "not-ready") => LinkError::NotReady,
        _ => LinkError::Status { status, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_base_urls() {
        let token = || SecretString::from("secret-token".to_owned());
        assert!(BackOffice::new("http://127.0.0.1:8080", token()).is_ok());
        assert!(matches!(BackOffice::new("ftp://x", token()), Err(LinkError::BadUrl(_))));
        assert!(matches!(BackOffice::new("not a url", token()), Err(LinkError::BadUrl(_))));
        let office = BackOffice::new("http://host/prefix", token()).unwrap();
        assert_eq!(office.url("api/v1/x").unwrap().as_str(), "http://host/prefix/api/v1/x");
        assert!(!format!("{office:?}").contains("secret-token"));
    }
}
