//! The OpenAPI 3.1 document, generated from the route annotations and schema types.
//!
//! `openapi/openapi.json` is this document, checked in; a test regenerates it and fails on any
//! difference (`UPDATE_OPENAPI=1 cargo test -p ferrymq-gateway --test openapi` rewrites it).
//! Responses every operation can give (bad input, auth, unavailable) are added here once.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::problem::PROBLEM_JSON;

/// The gateway's API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FerryMQ",
        description = "REST API of the FerryMQ message broker. Errors are RFC 9457 problem documents \
            (`application/problem+json`) whose `type` is `urn:ferrymq:error:<kind>`. The WebSocket \
            protocol of `/v1/ws` is described in `openapi/asyncapi.yaml`.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::routes::ops::healthz,
        crate::routes::ops::metrics,
        crate::routes::ops::openapi,
        crate::routes::topics::create,
        crate::routes::topics::list,
        crate::routes::topics::get,
        crate::routes::topics::delete,
        crate::routes::publish::publish,
        crate::routes::lookup::find,
        crate::routes::lookup::get,
        crate::routes::groups::list,
        crate::routes::groups::get,
        crate::routes::groups::put,
        crate::routes::consume::receive,
        crate::routes::consume::ack,
        crate::routes::consume::nack,
        crate::routes::consume::change_invisible,
        crate::routes::groups::reset,
        crate::routes::groups::dlq,
        crate::routes::groups::resend,
        crate::routes::transactions::commit,
        crate::routes::transactions::rollback,
        crate::routes::transactions::put_producer,
        crate::ws::upgrade,
        crate::routes::tickets::issue,
    ),
    components(schemas(crate::problem::Problem, crate::problem::FieldError, crate::wire::CheckRequest, crate::wire::CheckAnswer)),
    modifiers(&CommonResponses),
    tags(
        (name = "topics", description = "Manage topics"),
        (name = "messages", description = "Publish and look up messages"),
        (name = "consume", description = "Simple consumption with leases"),
        (name = "groups", description = "Consumer groups, offsets and dead letters"),
        (name = "transactions", description = "Transactional messages"),
        (name = "websocket", description = "The WebSocket protocol"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the responses that any operation may give.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let open = path == "/healthz" || path == "/openapi.json";
            let operations: [&mut Option<Operation>; 4] =
                [&mut item.get, &mut item.post, &mut item.put, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_string()).or_insert_with(|| problem(description).into());
                };
                if path != "/healthz" {
                    add("503", "The broker is recovering or shutting down");
                }
                if open {
                    continue;
                }
                add("400", "Invalid input: the problem names each invalid field as a JSON Pointer");
                add("401", "No valid token (only with an auth file)");
                add("403", "The token lacks the grant");
                add("405", "The method is not allowed on this path");
                add("413", "The request body exceeds the server's limit");
            }
        }
    }
}

/// The document as pretty JSON, as checked in.
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut text = ApiDoc::openapi().to_pretty_json()?;
    text.push('\n');
    Ok(text)
}
