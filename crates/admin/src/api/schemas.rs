//! `GET /api/schemas` and `GET /api/schemas/{data_type}`: the JSON Schema of each data
//! type's payload, from `streamhub_model::schema`. Public, as the OpenAPI document that
//! embeds the same schemas is: they describe the product, not anyone's data.

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use streamhub_model::DataType;
use streamhub_model::api::ErrorBody;
use streamhub_model::schema;
use utoipa::openapi::{ObjectBuilder, RefOr, schema::Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;

/// The media type of a JSON Schema document.
pub const SCHEMA_MEDIA_TYPE: &str = "application/schema+json";

/// One data type's schema in the list.
#[derive(Serialize, ToSchema)]
pub struct SchemaLink {
    pub data_type: DataType,
    /// The schema's title, also its name under `components/schemas` of the OpenAPI document.
    #[schema(example = "SensorPayload")]
    pub title: String,
    /// Where to fetch it: `/api/schemas/{data_type}`.
    #[schema(example = "/api/schemas/sensor")]
    pub url: String,
}

/// The title of `data_type`'s schema: its name among the OpenAPI document's components.
pub fn title_of(data_type: DataType) -> &'static str {
    schema::schema(data_type)["title"]
        .as_str()
        .unwrap_or_default()
}

/// `GET /api/schemas`: the data types and where their schemas are.
#[utoipa::path(
    get,
    path = "/schemas",
    tag = "schemas",
    responses((status = 200, description = "Every data type, with its schema's title and URL", body = [SchemaLink])),
)]
pub async fn list() -> Json<Vec<SchemaLink>> {
    Json(
        DataType::ALL
            .into_iter()
            .map(|d| SchemaLink {
                data_type: d,
                title: title_of(d).to_owned(),
                url: format!("{}/schemas/{d}", crate::openapi::API_PREFIX),
            })
            .collect(),
    )
}

/// A JSON Schema (draft 2020-12) document.
pub struct JsonSchemaDocument;

impl PartialSchema for JsonSchemaDocument {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "A JSON Schema (draft 2020-12); the same as the data type's *Payload component",
            ))
            .into()
    }
}

impl ToSchema for JsonSchemaDocument {}

/// `GET /api/schemas/{data_type}`: the JSON Schema every payload of that data type
/// matches; `streamhub consumer read --validate` and the dashboard's tail check messages
/// with it.
#[utoipa::path(
    get,
    path = "/schemas/{data_type}",
    tag = "schemas",
    params(("data_type" = DataType, Path, description = "sensor, payment, weather, logs, user_activity or generic")),
    responses(
        (status = 200, description = "The payload schema", content_type = "application/schema+json", body = JsonSchemaDocument),
        (status = 404, description = "No such data type", body = ErrorBody),
    ),
)]
pub async fn get(Path(data_type): Path<String>) -> Result<Response, ApiError> {
    let data_type: DataType = data_type.parse().map_err(ApiError::not_found)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCHEMA_MEDIA_TYPE),
        )],
        schema::schema_text(data_type),
    )
        .into_response())
}
