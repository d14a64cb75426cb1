//! Headquarters (feature `hq`): the server every kiosk replicates to.
//!
//! - [`store`]: HQ's embedded redb store — records decoded with the hospital model and merged on upsert, queryable
//!   by kind, site, device and time; device cursors; op receipts; quarantine; the reference-data change log;
//!   enrolment codes and credentials.
//! - [`pg`]: the PostgreSQL store (production), the same rules on tables with real columns.
//! - [`rows`]: what both stores keep and hand out (devices, codes, merged records, receipts, quarantine, changes)
//!   and their shared error, [`rows::HqError`]; [`credentials`]: random credentials and codes, stored as hashes.
//! - [`enrol`] and [`admit`]: the enrolment rules and the admission checks, written once for both stores.
//! - [`backend`]: [`backend::HqBackend`], either store behind one type.
//! - [`server`]: the axum service (sync endpoints, loopback admin endpoint), HTTPS with rustls.
//! - [`admin`]: administration commands that work with or without the server running.
//! - [`reports_api`]: cross-site reports (JSON, CSV) and the HTML overview, behind the reporting token.
//! - [`openapi`]: the `OpenAPI` document (`/openapi.json`), generated from the handlers.
//! - [`limits`]: per-request deadline and per-client rate limit.
//! - [`relay`]: a site hub forwarding its desks' ops to the group HQ (and the group's reference data down).
//! - [`feed`]: the site record feed every device of a site pulls; [`watch`]: the long poll that tells a desk when
//!   its site has new records.
//!
//! The push/pull rules themselves live in the domain-agnostic `guidedesk_sync::server`; this module supplies the
//! storage behind them.

pub mod admin;
pub mod admit;
pub mod backend;
pub mod credentials;
pub mod enrol;
pub mod feed;
pub mod limits;
pub mod openapi;
pub mod pg;
pub mod relay;
pub mod reports_api;
pub mod rows;
pub mod server;
pub mod store;
pub mod watch;
