//! One client connection's view of the router: the hyper service that turns each
//! request into a forwarded one or a refusal. Log lines go straight into the worker's
//! batch (`batch`); an upgrade is left for the connection's task (`server`).
//!
//! A request goes: limits (`headers::check`, 400/417) → `forward::send` (choose an
//! instance, get a connection, send, wait for the response head) → `forward::respond`,
//! or a Heroku-style error page when any step gives a [`Code`].

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use tokio::time::Instant;

use super::Router;
use super::body::{Exchange, RouterBody};
use super::client_conn::ClientConn;
use super::codes::{self, Code, Entry};
use super::forward;
use super::headers;

/// The service: never fails; every problem is a response with a Heroku code.
/// `req`'s body is `None` when the router read the request itself (`front_h1`): it has
/// none.
pub(crate) async fn handle(
    ctx: Arc<ClientConn>,
    req: Request<Option<Incoming>>,
) -> Response<RouterBody> {
    let arrived = Instant::now();
    let entry = entry(&ctx, &req);
    let mut exchange = Exchange::new(Arc::clone(&ctx), entry);
    let checked = headers::check(req.method(), req.uri(), req.headers())
        .and_then(|()| headers::check_host(req.version(), req.headers()));
    if let Err(cause) = checked {
        return refuse(&ctx.router, exchange, Code::H26(cause));
    }
    let upgrade = headers::wants_upgrade(req.headers());
    let own_server = req.body().is_none();
    let outgoing = forward::prepare(req);
    let sent = forward::send(&ctx.router, outgoing, &mut exchange, arrived, upgrade).await;
    match sent.and_then(|r| forward::check_switch(&r, upgrade).map(|()| r)) {
        Ok(response) => forward::respond(&ctx, response, exchange, own_server),
        Err(code) => refuse(&ctx.router, exchange, code),
    }
}

/// What the log line will say about the request, as far as the request tells.
fn entry<B>(ctx: &ClientConn, req: &Request<B>) -> Entry {
    Entry {
        method: req.method().clone(),
        uri: req.uri().clone(),
        host: req.headers().get(header::HOST).cloned(),
        request_id: headers::request_id(req.headers()),
        fwd: headers::forwarded_for(req.headers(), ctx.client()),
        version: req.version(),
        dyno: None,
        connect: None,
        service: None,
        status: None,
        bytes: 0,
    }
}

/// Logs `code` and answers with its status and page. A refused request (H26) closes the
/// connection: its body, if any, was not read and the framing cannot be trusted. An H21
/// while a web instance listens elsewhere says where it listens and what to do.
fn refuse(router: &Router, mut exchange: Exchange, code: Code) -> Response<RouterBody> {
    exchange.finish(Some(code));
    let note = match code {
        Code::H21 => router.backends.borrow().elsewhere.clone(),
        _ => None,
    };
    let body = note.map_or_else(
        || RouterBody::own(code.page()),
        |note| RouterBody::made(codes::page_with_note(code, &note)),
    );
    let mut response = Response::new(body);
    *response.status_mut() = code.status();
    let html = code.status().is_server_error();
    let headers = response.headers_mut();
    headers::own_response(headers, &exchange.entry().request_id, html);
    if matches!(code, Code::H26(_)) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
