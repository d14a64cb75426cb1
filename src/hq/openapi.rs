//! HQ's `OpenAPI` document, generated from the handlers' `#[utoipa::path]` annotations.
//!
//! The kiosk-facing router is built with utoipa-axum's `OpenApiRouter` ([`super::server::router`]): a handler is
//! routed and documented by the same `routes!` call, so every routed path is in the document and every documented
//! path is routed. The document is served as `GET /openapi.json` (no credential).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

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
    /// The one-time code (`XXXX-XXXX-XXXX`).
    pub code: String,
    /// The kiosk's device id (UUID).
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

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "device_credential",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a kiosk's credential from /v1/enroll"))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "reports_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("the HQ reporting token (guidedesk-hq serve --reports-token-file)"))
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
