//! Heroku's router error codes and the router log line, as pure functions: which
//! status and HTML page a code answers with, and which `key=value` fields a request's
//! log line carries, in Heroku's order and spelling.
//!
//! Sources: Heroku Dev Center "Heroku Error Codes" (field sets of each example line) and
//! "HTTP Routing" § Heroku Router Log Format (field order; `protocol=http1.1` as Router 2.0
//! prints it). Deciding *which* code a request gets is the forwarding code's business
//! (`service`, `forward`); rendering the fields as text or JSON is the printer's.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::{Method, StatusCode, Uri, Version};

use crate::output::{RouterLog, RouterValue};

/// The Heroku codes the local router can give a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// Every web instance crashed and none will restart.
    H10,
    /// No response byte within the request timeout.
    H12,
    /// The backend closed the connection without writing anything.
    H13,
    /// No web instance at all (`web=0`, or all stopped).
    H14,
    /// The backend's response could not be parsed as HTTP.
    H17,
    /// The backend went away mid-response, or while the request body was being sent.
    H18,
    /// Connecting to the backend took longer than 5 seconds.
    H19,
    /// Waited for a starting instance longer than the request timeout.
    H20,
    /// Every up instance refused the connection.
    H21,
    /// The request broke an HTTP rule the router enforces (400 or 417).
    H26(Cause),
    /// The client went away before the response was complete.
    H27,
}

/// H26's `cause=` values (Dev Center § H26 - Request Error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// `Expect:` with anything but `100-continue`: 417.
    UnsupportedExpect,
    /// A header line over 8192 bytes, a name over 1000, more than 1000 headers, or two
    /// `Host` headers: 400.
    BadHeader,
    /// A request line over 8192 bytes: 400.
    BadRequestLine,
    /// `CONNECT`, which Heroku's router does not support: 400.
    UnsupportedMethod,
    /// Invalid chunked encoding in the request body: 400.
    BadChunk,
    /// An HTTP/1.1 request without `Host`: 400.
    MissingHost,
}

impl Cause {
    fn text(self) -> &'static str {
        match self {
            Cause::UnsupportedExpect => "unsupported expect header value",
            Cause::BadHeader => "bad header",
            Cause::BadRequestLine => "bad request line",
            Cause::UnsupportedMethod => "unsupported method",
            Cause::BadChunk => "bad chunk",
            Cause::MissingHost => "missing host header",
        }
    }
}

impl Code {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Code::H10 => "H10",
            Code::H12 => "H12",
            Code::H13 => "H13",
            Code::H14 => "H14",
            Code::H17 => "H17",
            Code::H18 => "H18",
            Code::H19 => "H19",
            Code::H20 => "H20",
            Code::H21 => "H21",
            Code::H26(_) => "H26",
            Code::H27 => "H27",
        }
    }

    pub(crate) fn desc(self) -> &'static str {
        match self {
            Code::H10 => "App crashed",
            Code::H12 => "Request timeout",
            Code::H13 => "Connection closed without response",
            Code::H14 => "No web processes running",
            Code::H17 => "Poorly formatted HTTP response",
            Code::H18 => "Server Request Interrupted",
            Code::H19 => "Backend connection timeout",
            Code::H20 => "App boot timeout",
            Code::H21 => "Backend connection refused",
            Code::H26(_) => "Request Error",
            Code::H27 => "Client Request Interrupted",
        }
    }

    /// What the client is answered (and what the log says for H27, nginx's 499).
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Code::H26(Cause::UnsupportedExpect) => StatusCode::EXPECTATION_FAILED,
            Code::H26(_) => StatusCode::BAD_REQUEST,
            Code::H27 => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn at(self) -> &'static str {
        match self {
            Code::H27 => "warning",
            _ => "error",
        }
    }

    /// Heroku prefixes the two "interrupted" codes with the side that hung up.
    fn sock(self) -> Option<&'static str> {
        match self {
            Code::H18 => Some("backend"),
            Code::H27 => Some("client"),
            _ => None,
        }
    }

    /// Codes decided before any backend was involved print `dyno= connect= service=`.
    fn before_backend(self) -> bool {
        matches!(self, Code::H10 | Code::H14 | Code::H20)
    }

    /// The page served with a 503: Heroku's "Application Error", with the code spelled
    /// out because locally the reader is the developer.
    pub(crate) fn page(self) -> &'static str {
        macro_rules! page {
            ($code:literal, $desc:literal) => {
                concat!(
                    "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n",
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
                    "<title>Application Error</title>\n<style>\n",
                    "body{margin:0;font-family:-apple-system,Helvetica,Arial,sans-serif;",
                    "background:#f7f8fb;color:#3f3f44}\n",
                    "main{max-width:640px;margin:15vh auto;padding:0 24px}\n",
                    "h1{font-weight:400;color:#79589f}\ncode{background:#ecebf3;padding:2px 6px}\n",
                    "</style>\n</head>\n<body>\n<main>\n<h1>Application error</h1>\n",
                    "<p>An error occurred in the application and your page could not be served. ",
                    "Check the hlocal output for details.</p>\n<p><code>",
                    $code,
                    " ",
                    $desc,
                    "</code></p>\n</main>\n</body>\n</html>\n"
                )
            };
        }
        match self {
            Code::H10 => page!("H10", "App crashed"),
            Code::H12 => page!("H12", "Request timeout"),
            Code::H13 => page!("H13", "Connection closed without response"),
            Code::H14 => page!("H14", "No web processes running"),
            Code::H17 => page!("H17", "Poorly formatted HTTP response"),
            Code::H18 => page!("H18", "Server Request Interrupted"),
            Code::H19 => page!("H19", "Backend connection timeout"),
            Code::H20 => page!("H20", "App boot timeout"),
            Code::H21 => page!("H21", "Backend connection refused"),
            Code::H26(Cause::UnsupportedExpect) => "417 Expectation Failed\n",
            Code::H26(_) => "400 Bad Request\n",
            Code::H27 => "",
        }
    }
}

/// The error page of `code` with a note from hlocal for the developer (what is wrong
/// with the app and how to fix it), HTML-escaped, after the code.
pub(crate) fn page_with_note(code: Code, note: &str) -> String {
    let page = code.page();
    let end = page.find("</main>").unwrap_or(page.len());
    let mut text = String::with_capacity(page.len() + note.len() + 16);
    text.push_str(&page[..end]);
    text.push_str("<p>");
    for c in note.chars() {
        match c {
            '<' => text.push_str("&lt;"),
            '>' => text.push_str("&gt;"),
            '&' => text.push_str("&amp;"),
            c => text.push(c),
        }
    }
    text.push_str("</p>\n");
    text.push_str(&page[end..]);
    text
}

/// Everything a log line says about one request, gathered while it is proxied. Values
/// are cheap clones of what the request already holds; the strings of the log line are
/// made once, by [`fields`].
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) request_id: HeaderValue,
    /// The `X-Forwarded-For` value sent to the backend (Heroku's `fwd`).
    pub(crate) fwd: HeaderValue,
    pub(crate) version: Version,
    pub(crate) dyno: Option<Arc<str>>,
    pub(crate) connect: Option<Duration>,
    pub(crate) service: Option<Duration>,
    pub(crate) status: Option<StatusCode>,
    /// Response body bytes sent to the client.
    pub(crate) bytes: u64,
}

/// The log line of a request: `at=info …` when `code` is `None`, else Heroku's error
/// shape for that code.
pub(crate) fn fields(code: Option<Code>, e: &Entry) -> RouterLog {
    let mut f = RouterLog::with_capacity(16, 192);
    match code {
        None => f.push("at", RouterValue::Word("info")),
        Some(code) => {
            if let Some(sock) = code.sock() {
                f.push("sock", RouterValue::Word(sock));
            }
            f.push("at", RouterValue::Word(code.at()));
            f.push("code", RouterValue::Word(code.name()));
            f.push("desc", RouterValue::Quoted(code.desc()));
            if let Code::H26(cause) = code {
                f.push("cause", RouterValue::Quoted(cause.text()));
            }
        }
    }
    f.push("method", RouterValue::Word(e.method.as_str()));
    f.push("path", RouterValue::Quoted(path(&e.uri)));
    match &e.host {
        Some(host) => f.push("host", RouterValue::Word(&lossy(host))),
        None => f.push("host", RouterValue::Empty),
    }
    f.push("request_id", RouterValue::Word(&lossy(&e.request_id)));
    f.push("fwd", RouterValue::Quoted(&lossy(&e.fwd)));
    push_timings(&mut f, code, e);
    f.push("protocol", RouterValue::Word(protocol(e.version)));
    f
}

/// `dyno connect service status bytes`, blanked the way Heroku's examples show them:
/// codes decided before a backend was chosen leave all but `status` empty; H19 and H21
/// have no `service`; a router-made 503 has no `bytes`, except the ones after a backend answered
/// part of the exchange (H12, H13, H17, H18: `bytes=0`).
fn push_timings(f: &mut RouterLog, code: Option<Code>, e: &Entry) {
    let blank = code.is_some_and(Code::before_backend);
    let dyno = e.dyno.as_deref().filter(|_| !blank);
    f.push("dyno", dyno.map_or(RouterValue::Empty, RouterValue::Word));
    let connect = e.connect.filter(|_| !blank);
    f.push("connect", millis(connect));
    let service = e
        .service
        .filter(|_| !blank && !matches!(code, Some(Code::H19 | Code::H21)));
    f.push("service", millis(service));
    let status = code.map_or(e.status, |c| Some(c.status()));
    f.push(
        "status",
        status.map_or(RouterValue::Empty, |s| {
            RouterValue::Number(s.as_u16().into())
        }),
    );
    let bytes = match code {
        None | Some(Code::H12 | Code::H13 | Code::H17 | Code::H18 | Code::H27) => {
            RouterValue::Number(e.bytes)
        }
        Some(Code::H26(_)) if e.dyno.is_some() => RouterValue::Number(e.bytes),
        Some(_) => RouterValue::Empty,
    };
    f.push("bytes", bytes);
}

/// A header's text; bytes that are not UTF-8 are shown as U+FFFD. Nearly every value is
/// visible ASCII, which `to_str` checks faster than a UTF-8 decode.
fn lossy(v: &HeaderValue) -> Cow<'_, str> {
    v.to_str()
        .map_or_else(|_| String::from_utf8_lossy(v.as_bytes()), Cow::Borrowed)
}

fn millis(d: Option<Duration>) -> RouterValue<'static> {
    d.map_or(RouterValue::Empty, |d| {
        RouterValue::Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

/// Heroku's `path`: path and query string, whatever form the request target had.
fn path(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

/// Router 2.0 spells the client's protocol `http1.1`.
fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "http0.9",
        Version::HTTP_10 => "http1.0",
        Version::HTTP_2 => "http2.0",
        _ => "http1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            method: Method::GET,
            uri: Uri::from_static("/a?b=1"),
            host: Some(HeaderValue::from_static("localhost:5006")),
            request_id: HeaderValue::from_static("f189ac84-cfd8-4bec-9226-741250314389"),
            fwd: HeaderValue::from_static("127.0.0.1"),
            version: Version::HTTP_11,
            dyno: Some("web.1".into()),
            connect: Some(Duration::from_micros(300)),
            service: Some(Duration::from_millis(3)),
            status: Some(StatusCode::OK),
            bytes: 1234,
        }
    }

    /// Renders fields as the plain printer does, to compare with Heroku's lines.
    fn line(log: &RouterLog) -> String {
        crate::output::format::router_text(log)
    }

    #[test]
    fn info_line_has_herokus_fields_in_order() {
        assert_eq!(
            line(&fields(None, &entry())),
            "at=info method=GET path=\"/a?b=1\" host=localhost:5006 \
             request_id=f189ac84-cfd8-4bec-9226-741250314389 fwd=\"127.0.0.1\" dyno=web.1 \
             connect=0ms service=3ms status=200 bytes=1234 protocol=http1.1"
        );
    }

    #[test]
    fn codes_decided_before_a_backend_leave_timings_empty() {
        for code in [Code::H10, Code::H14, Code::H20] {
            let text = line(&fields(Some(code), &entry()));
            let want = format!(
                "at=error code={} desc=\"{}\" method=GET path=\"/a?b=1\" host=localhost:5006 \
                 request_id=f189ac84-cfd8-4bec-9226-741250314389 fwd=\"127.0.0.1\" dyno= \
                 connect= service= status=503 bytes= protocol=http1.1",
                code.name(),
                code.desc()
            );
            assert_eq!(text, want);
        }
    }

    #[test]
    fn h21_keeps_dyno_and_connect_but_no_service() {
        let text = line(&fields(Some(Code::H21), &entry()));
        assert!(
            text.contains("dyno=web.1 connect=0ms service= status=503 bytes= "),
            "{text}"
        );
    }

    #[test]
    fn h12_h13_h18_count_bytes() {
        let mut e = entry();
        e.bytes = 0;
        e.service = Some(Duration::from_millis(30_001));
        let h12 = line(&fields(Some(Code::H12), &e));
        assert!(
            h12.starts_with("at=error code=H12 desc=\"Request timeout\" method=GET"),
            "{h12}"
        );
        assert!(h12.contains("dyno=web.1 connect=0ms service=30001ms status=503 bytes=0 "));
        let h13 = line(&fields(Some(Code::H13), &e));
        assert!(h13.contains("desc=\"Connection closed without response\""));
        let h18 = line(&fields(Some(Code::H18), &e));
        assert!(
            h18.starts_with("sock=backend at=error code=H18 desc=\"Server Request Interrupted\""),
            "{h18}"
        );
    }

    #[test]
    fn h27_is_a_warning_from_the_client_side_with_499() {
        let text = line(&fields(Some(Code::H27), &entry()));
        assert!(
            text.starts_with("sock=client at=warning code=H27 desc=\"Client Request Interrupted\""),
            "{text}"
        );
        assert!(text.contains(" status=499 bytes=1234 "), "{text}");
    }

    #[test]
    fn h26_names_its_cause_and_status() {
        let mut e = entry();
        e.dyno = None;
        e.connect = None;
        e.service = None;
        let text = line(&fields(Some(Code::H26(Cause::UnsupportedExpect)), &e));
        assert!(
            text.starts_with(
                "at=error code=H26 desc=\"Request Error\" cause=\"unsupported expect header value\""
            ),
            "{text}"
        );
        assert!(
            text.contains("dyno= connect= service= status=417 bytes= "),
            "{text}"
        );
        let bad = fields(Some(Code::H26(Cause::BadChunk)), &entry());
        assert!(line(&bad).contains("status=400 bytes=1234"));
    }

    #[test]
    fn missing_host_is_empty_and_protocol_follows_the_client() {
        let mut e = entry();
        e.host = None;
        e.version = Version::HTTP_10;
        let text = line(&fields(None, &e));
        assert!(text.contains(" host= request_id="), "{text}");
        assert!(text.ends_with("protocol=http1.0"), "{text}");
    }

    #[test]
    fn a_note_goes_into_the_page_escaped() {
        let page = page_with_note(Code::H21, "web.1: pass $PORT <now>");
        assert!(
            page.contains("<p>web.1: pass $PORT &lt;now&gt;</p>\n</main>"),
            "{page}"
        );
        assert!(page.contains("H21 Backend connection refused"), "{page}");
    }

    #[test]
    fn every_503_code_has_an_application_error_page() {
        for code in [
            Code::H10,
            Code::H12,
            Code::H13,
            Code::H14,
            Code::H17,
            Code::H18,
            Code::H19,
            Code::H20,
            Code::H21,
        ] {
            assert_eq!(code.status(), StatusCode::SERVICE_UNAVAILABLE);
            let page = code.page();
            assert!(page.contains("<title>Application Error</title>"));
            assert!(page.contains(&format!("{} {}", code.name(), code.desc())));
        }
        assert_eq!(Code::H27.status().as_u16(), 499);
        assert_eq!(Code::H26(Cause::BadChunk).status(), StatusCode::BAD_REQUEST);
    }
}
