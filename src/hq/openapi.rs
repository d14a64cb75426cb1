//! HQ's `OpenAPI` document, generated from the handlers' `#[utoipa::path]` annotations.
//!
//! The kiosk-facing router is built with utoipa-axum's `OpenApiRouter` ([`super::server::router`]): a handler is
//! routed and documented by the same `routes!` call, so every routed path is in the document and every documented
//! path is routed. The document is served as `GET /openapi.json` (no credential).

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::reports_api::{LANGS, TABLE_NAMES};

/// The path of the document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Every error answer: a stable code and a message for people.
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct ErrorJson {
    /// Stable code: `unauthorized`, `device_revoked`, `device_mismatch`, `bad_request`, `bad_batch`,
    /// `payload_too_large`, `code_invalid`, `code_used`, `code_expired`, `unavailable`, `internal`, `not_found`,
    /// `rate_limited`, `timeout`, `reports_disabled`.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// The enrolment request (`guidedesk_sync::protocol::EnrollRequest`).
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct EnrollJson {
    /// The one-time code (`XXXX-XXXX-XXXX`; case, spaces and dashes do not matter).
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
    /// The kiosk's device id (UUID).
    #[schema(format = "uuid", min_length = 32, max_length = 45)]
    pub device: String,
}

/// The enrolment answer (`guidedesk_sync::protocol::EnrollResponse`).
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)]
pub struct EnrolledJson {
    /// The device credential (sent as `Authorization: Bearer …` from then on).
    pub token: String,
    /// The device id.
    pub device: String,
    /// Site code.
    pub site: String,
    /// Desk code.
    pub desk: String,
    /// HQ's clock (ms since the Unix epoch).
    pub server_time_ms: u64,
}

/// The `lang` query parameter: one of [`LANGS`], exactly as written.
#[derive(Debug, Clone, Copy)]
pub struct LangParam;

impl PartialSchema for LangParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(LANGS)).into()
    }
}

impl ToSchema for LangParam {}

/// The `table` query parameter: one of [`TABLE_NAMES`].
#[derive(Debug, Clone, Copy)]
pub struct TableParam;

impl PartialSchema for TableParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(TABLE_NAMES)).into()
    }
}

impl ToSchema for TableParam {}

/// A sync request or answer body: the codec's bytes (`application/vnd.guidedesk.sync`), `type: string,
/// format: binary` (what `POST /v1/push` and `POST /v1/pull` take and give).
#[derive(Debug, Clone, Copy)]
pub struct SyncBody;

impl PartialSchema for SyncBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for SyncBody {}

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "device_credential",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "a kiosk's credential from /v1/enroll (`Authorization: Bearer <credential>`; a header of \
                         another form is answered 401 naming it)",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "reports_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "the HQ reporting token (guidedesk-hq serve --reports-token-file), sent as \
                         `Authorization: Bearer <token>`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document's fixed parts; the paths are added by the router.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "GuideDesk HQ", description = "Sync endpoints for kiosks, cross-site reports for headquarters."),
    components(schemas(ErrorJson, EnrollJson, EnrolledJson)),
    modifiers(&Security)
)]
pub struct ApiDoc;
