//! `POST /v1/ws/tickets`: single-use tickets that carry a token's grants to a browser's
//! WebSocket, which cannot send an `Authorization` header.

use axum::extract::State;

use crate::access::Caller;
use crate::extract::Json;
use crate::problem::ApiResult;
use crate::state::AppState;
use crate::wire::TicketOut;

/// Issues a single-use WebSocket ticket carrying the caller's grants.
#[utoipa::path(
    post,
    path = "/v1/ws/tickets",
    operation_id = "issue_ticket",
    tag = "websocket",
    responses((status = 200, description = "A ticket for `/v1/ws?ticket=`", body = TicketOut))
)]
pub async fn issue(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TicketOut>> {
    let (ticket, expires_at) = state.tickets().issue(caller.grants, state.settings().ws_ticket_ttl);
    Ok(Json(TicketOut { ticket, expires_at }))
}
