//! Offline acceptance over HTTP: validators (through their carrier's systems) download the
//! signed greenlist and denylist, full or as a delta from the version they hold, carriers'
//! systems read the XML greenlist (KIDSOK 2.1), and validators upload their journal batches.
//! Rules live in `smartticket-fleet`; this module maps them to HTTP.
//!
//! "Up to date" is `204 No Content`: the `since` parameter is the validator's own statement
//! of what it holds, not an HTTP validator (`If-None-Match`), so `304` would misuse
//! conditional requests (and caches must not store these answers anyway: they are
//! `no-store`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use smartticket_acceptance::lists::ListKind;
use smartticket_fleet::{
    BATCH_PAYLOAD_BYTES_MAX, BATCH_RECORDS_MAX, BatchAck, DeviceUploads, GREENLIST_XSD, ListDownload, RECORD_BYTES_MAX,
    UploadBatch, XmlDownload,
};
use smartticket_identity::Role;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Ctx};
use crate::problem::Problem;

/// Who reads lists and uploads batches: carriers (for their validators) and the back office.
const FLEET: &[Role] = &[Role::Admin, Role::Operator, Role::Carrier];
/// Header naming the list version an answer brings the caller to.
const LIST_VERSION_HEADER: HeaderName = HeaderName::from_static("x-list-version");
/// Header naming the version a delta applies to; 0 for a full list.
const BASE_VERSION_HEADER: HeaderName = HeaderName::from_static("x-list-base-version");
/// Largest upload body: every record at its base64 length (4 characters per 3 bytes, plus
/// padding), its quotes and comma, and the fields around them.
const BATCH_BODY_BYTES_MAX: usize = BATCH_PAYLOAD_BYTES_MAX.div_ceil(3) * 4 + BATCH_RECORDS_MAX * (4 + 3) + 1024;
/// Longest base64 text of one record.
const RECORD_BASE64_CHARS_MAX: usize = RECORD_BYTES_MAX.div_ceil(3) * 4;

pub(crate) fn register(api: Api) -> Api {
    let (schemas, paths, upload) = routes!(upload_batch);
    let upload = upload.layer(axum::extract::DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX));
    api.endpoint(Access::Roles(FLEET), routes!(greenlist))
        .endpoint(Access::Roles(FLEET), routes!(denylist))
        .endpoint(Access::Roles(FLEET), routes!(greenlist_xml))
        .endpoint(Access::Roles(FLEET), routes!(greenlist_xsd))
        .endpoint(Access::Roles(FLEET), (schemas, paths, upload))
        .endpoint(Access::Roles(FLEET), routes!(device_uploads))
}

/// The version the caller holds.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Since {
    /// The list version the caller holds; absent for the full list.
    since: Option<u64>,
}

/// The signed greenlist (`crates/acceptance/src/lists/FORMAT.md`): the full list, or a delta
/// from `since` to the latest version. `204` when `since` is the latest version; `409
/// list-version-unknown` when it is not available (download the full list instead).
#[utoipa::path(get, path = "/api/v1/lists/greenlist", tag = "acceptance", params(Since),
    responses(
        (status = 200, description = "The signed list file", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("x-list-version" = u64, description = "The version the file makes current"),
                    ("x-list-base-version" = u64, description = "The version a delta applies to; 0 for a full list"))),
        (status = 204, description = "The caller holds the latest version",
            headers(("x-list-version" = u64, description = "The latest version"))),
        (status = 409, body = crate::problem::ProblemDocument),
        (status = 503, description = "No list published yet; retry after a few seconds", body = crate::problem::ProblemDocument)))]
async fn greenlist(State(app): State<AppState>, ApiQuery(query): ApiQuery<Since>) -> Result<Response, Problem> {
    list_answer(&app, ListKind::Greenlist, query.since).await
}

/// The signed denylist: blocked cards and tokens, full or as a delta from `since`, with the
/// answers of the greenlist.
#[utoipa::path(get, path = "/api/v1/lists/denylist", tag = "acceptance", params(Since),
    responses(
        (status = 200, description = "The signed list file", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("x-list-version" = u64, description = "The version the file makes current"),
                    ("x-list-base-version" = u64, description = "The version a delta applies to; 0 for a full list"))),
        (status = 204, description = "The caller holds the latest version",
            headers(("x-list-version" = u64, description = "The latest version"))),
        (status = 409, body = crate::problem::ProblemDocument),
        (status = 503, description = "No list published yet; retry after a few seconds", body = crate::problem::ProblemDocument)))]
async fn denylist(State(app): State<AppState>, ApiQuery(query): ApiQuery<Since>) -> Result<Response, Problem> {
    list_answer(&app, ListKind::Denylist, query.since).await
}

async fn list_answer(app: &AppState, kind: ListKind, since: Option<u64>) -> Result<Response, Problem> {
    match app.fleet().list_file(kind, since).await? {
        ListDownload::File { version, base_version, bytes } => {
            let name = if base_version == 0 {
                format!("{kind}-{version}.stls")
            } else {
                format!("{kind}-{base_version}-{version}.stls")
            };
            Ok(versioned(bytes.to_vec(), "application/octet-stream", version, base_version, Some(&name)))
        }
        ListDownload::UpToDate { version } => Ok(up_to_date(version)),
    }
}

/// The greenlist web service for carriers' systems (KIDSOK 2.1): every listed medium's
/// token and coupons (product, zones, validity, discount) with the photo of each discounted
/// coupon inline, as XML described by `/api/v1/greenlist.xsd`; with `since`, only the media
/// changed or removed since that version. `204` and `409` as for the binary list.
#[utoipa::path(get, path = "/api/v1/greenlist.xml", tag = "acceptance", params(Since),
    responses(
        (status = 200, description = "The XML greenlist", content_type = "application/xml", body = String,
            headers(("x-list-version" = u64, description = "The greenlist version described"),
                    ("x-list-base-version" = u64, description = "The version changes are counted from; 0 for all"))),
        (status = 204, description = "The caller holds the latest version",
            headers(("x-list-version" = u64, description = "The latest version"))),
        (status = 409, body = crate::problem::ProblemDocument),
        (status = 422, description = "The full document is too large: ask for changes with `since`", body = crate::problem::ProblemDocument),
        (status = 503, description = "No list published yet; retry after a few seconds", body = crate::problem::ProblemDocument)))]
async fn greenlist_xml(State(app): State<AppState>, ApiQuery(query): ApiQuery<Since>) -> Result<Response, Problem> {
    match app.fleet().greenlist_xml(query.since).await? {
        XmlDownload::Document { version, base_version, xml } => {
            Ok(versioned(xml, "application/xml; charset=utf-8", version, base_version, None))
        }
        XmlDownload::UpToDate { version } => Ok(up_to_date(version)),
    }
}

/// The XML schema of `/api/v1/greenlist.xml`.
#[utoipa::path(get, path = "/api/v1/greenlist.xsd", tag = "acceptance",
    responses((status = 200, description = "The XML schema", content_type = "application/xml", body = String)))]
async fn greenlist_xsd() -> Response {
    let mut response = GREENLIST_XSD.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    response
}

fn versioned(body: Vec<u8>, media_type: &'static str, version: u64, base: u64, file_name: Option<&str>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(LIST_VERSION_HEADER, HeaderValue::from(version));
    headers.insert(BASE_VERSION_HEADER, HeaderValue::from(base));
    if let Some(disposition) =
        file_name.and_then(|n| HeaderValue::from_str(&format!("attachment; filename=\"{n}\"")).ok())
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

fn up_to_date(version: u64) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(LIST_VERSION_HEADER, HeaderValue::from(version));
    response
}

/// A batch of a validator's journal records.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    /// The batch's id: the same id always names the same records (the journal's is the hex
    /// of device, first and last sequence).
    batch_id: String,
    /// The validator.
    device_id: String,
    /// The first record's sequence (from 1).
    first_sequence: u64,
    /// The last record's sequence.
    last_sequence: u64,
    /// One record per sequence, base64; at most 4096 records of at most 4096 bytes, 4 MiB
    /// in all.
    records: Vec<String>,
}

impl BatchBody {
    fn decode(self) -> Result<UploadBatch, Problem> {
        let BatchBody { batch_id, device_id, first_sequence, last_sequence, records } = self;
        if records.len() > BATCH_RECORDS_MAX {
            return Err(Problem::field("records", format!("at most {BATCH_RECORDS_MAX} records")));
        }
        let records = records
            .iter()
            .enumerate()
            .map(|(index, text)| {
                if text.len() > RECORD_BASE64_CHARS_MAX {
                    return Err(Problem::field(
                        "records",
                        format!("record {index} is larger than {RECORD_BYTES_MAX} bytes"),
                    ));
                }
                BASE64.decode(text).map_err(|_| Problem::field("records", format!("record {index} is not base64")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UploadBatch { batch_id, device_id, first_sequence, last_sequence, records })
    }
}

/// Uploads a batch of a validator's journal records. Each record is stored once per
/// (device, sequence); the answer says up to which sequence every record of the device is
/// stored, which the journal may acknowledge. The same batch again gets the same answer and
/// stores nothing; a batch that overlaps stored records is taken when those records are the
/// same bytes, and refused with `409 batch-conflict` otherwise (or when its id was used for
/// other records).
#[utoipa::path(post, path = "/api/v1/validators/batches", tag = "acceptance", request_body = BatchBody,
    responses(
        (status = 200, body = BatchAck),
        (status = 409, body = crate::problem::ProblemDocument),
        (status = 413, body = crate::problem::ProblemDocument),
        (status = 422, body = crate::problem::ProblemDocument)))]
async fn upload_batch(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Json<BatchAck>, Problem> {
    let batch = body.decode()?;
    let ack = app.fleet().receive_batch(&ctx, &batch).await?;
    Ok(Json(ack))
}

/// What the back office holds of one validator's journal: the sequence up to which every
/// record is stored, how many records (each once, however often sent) and batches arrived.
/// `404` when the device never uploaded.
#[utoipa::path(get, path = "/api/v1/validators/{device_id}", tag = "acceptance",
    params(("device_id" = String, Path, description = "The journal's device id (32 hex digits)")),
    responses(
        (status = 200, body = DeviceUploads),
        (status = 404, body = crate::problem::ProblemDocument)))]
async fn device_uploads(
    State(app): State<AppState>,
    ApiPath(device_id): ApiPath<String>,
) -> Result<Json<DeviceUploads>, Problem> {
    match app.fleet().device_uploads(&device_id).await? {
        Some(uploads) => Ok(Json(uploads)),
        None => Err(Problem::with_detail(
            crate::problem::ProblemKind::NotFound,
            format!("validator {device_id} never uploaded"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_limit_holds_the_largest_batch() {
        let largest_records = BATCH_PAYLOAD_BYTES_MAX.div_ceil(3) * 4 + BATCH_RECORDS_MAX * 4;
        assert!(BATCH_BODY_BYTES_MAX > largest_records + BATCH_RECORDS_MAX * 3);
        assert_eq!(RECORD_BASE64_CHARS_MAX, BASE64.encode(vec![0_u8; RECORD_BYTES_MAX]).len());
    }
}
