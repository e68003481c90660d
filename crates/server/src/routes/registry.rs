//! The partners' sales registry (seed 000) as JSON, CSV or XLSX: sales per day and
//! channel. A partner downloads its own; staff any partner's or all.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use smartticket_catalog::NaiveDate;
use smartticket_core::id::PartnerId;
use smartticket_export::{Cell, Column, Table};
use smartticket_identity::{Principal, Role};
use smartticket_sales::registry::Registry;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiQuery, Caller};
use crate::problem::{Problem, ProblemKind};

const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Auditor, Role::Partner];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Roles(READERS), routes!(partner_sales))
}

/// The file format.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Format {
    /// JSON.
    #[default]
    Json,
    /// RFC 4180 CSV, UTF-8.
    Csv,
    /// An Excel workbook.
    Xlsx,
}

/// Which registry.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RegistryQuery {
    /// First day (network-local).
    from: NaiveDate,
    /// Last day, inclusive; at most 92 days after `from`.
    to: NaiveDate,
    /// Staff: one partner (absent: every channel). Partners always get their own.
    partner_id: Option<PartnerId>,
    /// `json` (default), `csv` or `xlsx`.
    format: Option<Format>,
}

/// Sales by day, partner and channel: orders, items, gross and refunded amounts.
#[utoipa::path(get, path = "/api/v1/registry/partner-sales", tag = "registry", params(RegistryQuery),
    responses(
        (status = 200, body = Registry, description = "JSON, or the file as text/csv or an XLSX workbook"),
        (status = 422, body = crate::problem::ProblemDocument)))]
async fn partner_sales(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<RegistryQuery>,
) -> Result<Response, Problem> {
    let partner = match caller {
        Principal::Partner { id, .. } => {
            if query.partner_id.is_some_and(|asked| asked != id) {
                return Err(Problem::with_detail(ProblemKind::Forbidden, "a partner sees its own sales only"));
            }
            Some(id)
        }
        _ => query.partner_id,
    };
    let registry = app.sales().registry(partner, query.from, query.to).await?;
    let name = format!("partner-sales-{}-{}", query.from, query.to);
    match query.format.unwrap_or_default() {
        Format::Json => Ok(Json(registry).into_response()),
        Format::Csv => {
            let bytes = smartticket_export::to_csv(&table(&registry)?).map_err(export_problem)?;
            Ok(download(bytes, "text/csv; charset=utf-8", &format!("{name}.csv")))
        }
        Format::Xlsx => {
            let bytes = smartticket_export::to_xlsx(&table(&registry)?).map_err(export_problem)?;
            let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
            Ok(download(bytes, xlsx, &format!("{name}.xlsx")))
        }
    }
}

fn export_problem(error: smartticket_export::ExportError) -> Problem {
    Problem::new(ProblemKind::Internal).caused_by(error)
}

fn download(bytes: Vec<u8>, media_type: &'static str, file_name: &str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

/// The registry as an export table: one definition for both file formats.
fn table(registry: &Registry) -> Result<Table, Problem> {
    let currency = registry.currency;
    let columns = vec![
        Column::date("date", "Date"),
        Column::text("partner_id", "Partner id"),
        Column::text("partner", "Partner"),
        Column::text("channel", "Channel"),
        Column::int("orders", "Orders").summed(),
        Column::int("items", "Items").summed(),
        Column::money("gross", "Gross", currency).summed(),
        Column::money("refunded", "Refunded", currency).summed(),
    ];
    // The totals row (summed columns) is added by the export crate, in integers.
    let mut builder = Table::builder("Partner sales", columns).map_err(export_problem)?;
    for row in &registry.rows {
        builder
            .push_row(vec![
                Cell::Date(row.date),
                row.partner_id.map(|p| Cell::text(p.to_string())).unwrap_or(Cell::Empty),
                row.partner_name.clone().map(Cell::text).unwrap_or(Cell::Empty),
                Cell::text(row.channel.as_str()),
                Cell::Int(row.orders),
                Cell::Int(row.items),
                Cell::Money(row.gross),
                Cell::Money(row.refunded),
            ])
            .map_err(export_problem)?;
    }
    builder.build().map_err(export_problem)
}
