//! What the router adds to, removes from and refuses in HTTP headers, as pure functions
//! over `HeaderMap`s: the request limits that answer 400/417, `X-Request-Id`,
//! `X-Forwarded-*`, `X-Request-Start`, `Via`, and hop-by-hop removal.
//!
//! Sources: Heroku Dev Center "HTTP Routing" § Heroku Headers and § HTTP Validation and
//! Restrictions, "HTTP Request IDs"; RFC 9110 §7.6.1 (hop-by-hop fields). Moving bytes is
//! `forward`'s job; this file never touches a socket.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Uri, Version};

use super::codes::Cause;

/// Heroku: "The request line of the HTTP request is limited to 8192 bytes", "Headers are
/// restricted to 8192 bytes per line (and 1000 bytes for the header name)", "At most,
/// 1000 headers are allowed per request".
pub(crate) const MAX_LINE: usize = 8192;
pub(crate) const MAX_NAME: usize = 1000;
pub(crate) const MAX_HEADERS: usize = 1000;
/// The largest request head, request line included: what hyper buffers at most, checked
/// here again because hyper's buffer can overshoot its limit by what one read brings.
pub(crate) const MAX_HEAD: usize = 1 << 20;

const VIA: HeaderValue = HeaderValue::from_static("1.1 hlocal");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");

/// Refuses what Heroku's router refuses, before anything is forwarded.
pub(crate) fn check(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Cause> {
    if method == Method::CONNECT {
        return Err(Cause::UnsupportedMethod);
    }
    // `METHOD SP target SP HTTP/1.1`
    if method.as_str().len() + target_len(uri) + 10 > MAX_LINE {
        return Err(Cause::BadRequestLine);
    }
    if headers.len() > MAX_HEADERS {
        return Err(Cause::BadHeader);
    }
    let mut hosts = 0;
    let mut head_len = 0;
    for (name, value) in headers {
        let name_len = name.as_str().len();
        if name_len > MAX_NAME || name_len + 2 + value.len() > MAX_LINE {
            return Err(Cause::BadHeader);
        }
        // `name: value\r\n`
        head_len += name_len + value.len() + 4;
        if name == header::HOST {
            hosts += 1;
        } else if name == header::EXPECT && !value.as_bytes().eq_ignore_ascii_case(b"100-continue")
        {
            return Err(Cause::UnsupportedExpect);
        }
    }
    // Heroku changelog 2016-11-07: more than one Host is refused ("Host of Troubles").
    if hosts > 1 || head_len > MAX_HEAD {
        return Err(Cause::BadHeader);
    }
    Ok(())
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host` gets 400 (HTTP/1.0 needs none).
pub(crate) fn check_host(version: Version, headers: &HeaderMap) -> Result<(), Cause> {
    if version == Version::HTTP_11 && !headers.contains_key(header::HOST) {
        return Err(Cause::MissingHost);
    }
    Ok(())
}

/// Length of the request target as it was on the request line.
fn target_len(uri: &Uri) -> usize {
    let path = uri.path_and_query().map_or(0, |p| p.as_str().len());
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + 3);
    scheme + authority + path
}

/// Heroku keeps a client's `X-Request-Id` of 20 to 200 characters from `[A-Za-z0-9+/=-]`.
pub(crate) fn is_valid_request_id(id: &[u8]) -> bool {
    (20..=200).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-'))
}

/// The request's id: the client's when valid, else a new random (v4) UUID.
pub(crate) fn request_id(headers: &HeaderMap) -> HeaderValue {
    match headers.get(X_REQUEST_ID) {
        Some(id) if is_valid_request_id(id.as_bytes()) => id.clone(),
        _ => new_request_id(),
    }
}

fn new_request_id() -> HeaderValue {
    let uuid = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("invalid"))
}

/// The client's address as `fwd` and `X-Forwarded-For` show it: an IPv4 client that
/// arrived on an IPv6 socket (`::ffff:127.0.0.1`) is shown dotted.
pub(crate) fn client_ip(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

pub(crate) fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("unknown"))
}

/// `X-Forwarded-For`: the client's address appended to whatever chain the request carried.
pub(crate) fn forwarded_for(headers: &HeaderMap, client: &HeaderValue) -> HeaderValue {
    let mut prior = headers.get_all(X_FORWARDED_FOR).iter().peekable();
    if prior.peek().is_none() {
        return client.clone();
    }
    let mut chain = Vec::with_capacity(64);
    for value in prior {
        chain.extend_from_slice(value.as_bytes());
        chain.extend_from_slice(b", ");
    }
    chain.extend_from_slice(client.as_bytes());
    HeaderValue::from_bytes(&chain).unwrap_or_else(|_| client.clone())
}

/// Does the client ask to switch protocols (`Connection: upgrade` + `Upgrade: …`)?
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && has_token(headers, "upgrade")
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| tokens(v.as_bytes()))
}

/// The comma-separated tokens of a field value, trimmed, empty ones left out.
pub(crate) fn tokens(value: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop fields: the fixed list, `Proxy-*`, and any field `Connection` names.
/// Most messages carry none or only `Connection: keep-alive` (every response of most
/// servers), so one pass over the names finds them rather than a lookup per listed name,
/// and that common case allocates nothing.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut listed = headers.keys().filter(|k| is_hop_by_hop(k));
    let Some(first) = listed.next() else {
        return;
    };
    let only_connection = first == header::CONNECTION && listed.next().is_none();
    if only_connection && named_by_connection(headers).next().is_none() {
        headers.remove(header::CONNECTION);
        return;
    }
    let listed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_hop_by_hop(k))
        .cloned()
        .collect();
    let named: Vec<HeaderName> = named_by_connection(headers).collect();
    for name in listed.iter().chain(&named) {
        headers.remove(name);
    }
}

/// The fields `Connection` names for removal. `keep-alive` / `close` / `upgrade` name
/// nothing left to remove, and `Connection: host` must not take the request's `Host`
/// away (RFC 9110 §7.6.1).
fn named_by_connection(headers: &HeaderMap) -> impl Iterator<Item = HeaderName> {
    connection_tokens(headers)
        .filter(|t| names_a_field(t))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
}

/// Whether a `Connection` token names a field to remove, rather than being an option.
pub(crate) fn names_a_field(token: &[u8]) -> bool {
    ![&b"keep-alive"[..], b"close", b"upgrade", b"host"]
        .iter()
        .any(|k| token.eq_ignore_ascii_case(k))
}

/// The hop-by-hop fields of RFC 9110 §7.6.1 plus the `Proxy-*` family (`Proxy-Connection`
/// among them); `Upgrade` and `Connection` are put back by [`prepare_request`] when an
/// upgrade is being bridged. Names are lowercase in a `HeaderMap`.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    is_hop_by_hop_name(name.as_str())
}

/// [`is_hop_by_hop`] for a name as it came, in any case.
pub(crate) fn is_hop_by_hop_name(name: &str) -> bool {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    let listed = match name.len() {
        2 => is("te"),
        7 => is("trailer") || is("upgrade"),
        10 => is("connection") || is("keep-alive"),
        17 => is("transfer-encoding"),
        _ => false,
    };
    listed
        || name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("proxy-"))
}

/// What the router tells the backend about the request (Heroku § Heroku Headers).
pub(crate) struct Forwarded<'a> {
    pub(crate) request_id: &'a HeaderValue,
    pub(crate) forwarded_for: &'a HeaderValue,
    pub(crate) port: &'a HeaderValue,
    /// `X-Request-Start`, Unix time in milliseconds.
    pub(crate) start_ms: u64,
    /// Keep `Upgrade` and send `Connection: upgrade`.
    pub(crate) upgrade: bool,
}

/// Turns the client's request headers into the backend's, in place.
pub(crate) fn prepare_request(headers: &mut HeaderMap, fwd: &Forwarded<'_>) {
    let upgrade = fwd.upgrade.then(|| headers.get(header::UPGRADE).cloned());
    strip_hop_by_hop(headers);
    // The router answers `Expect: 100-continue` itself (Heroku § Expect: 100-continue).
    headers.remove(header::EXPECT);
    if let Some(Some(protocol)) = upgrade {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    // Room for the six below at once: the map hyper parsed is sized to the client's
    // headers, and growing it field by field would reallocate and rehash repeatedly.
    headers.reserve(6);
    for (name, value) in router_fields(fwd) {
        headers.insert(name, value);
    }
    headers.append(header::VIA, VIA);
}

/// The fields the router sets on every request, replacing the client's, before `Via`
/// (which it appends to the client's).
fn router_fields(fwd: &Forwarded<'_>) -> [(HeaderName, HeaderValue); 5] {
    [
        (X_REQUEST_ID, fwd.request_id.clone()),
        (X_FORWARDED_FOR, fwd.forwarded_for.clone()),
        (X_FORWARDED_PROTO, HeaderValue::from_static("http")),
        (X_FORWARDED_PORT, fwd.port.clone()),
        (X_REQUEST_START, HeaderValue::from(fwd.start_ms)),
    ]
}

/// Calls `field` with each field of the backend's request as [`prepare_request`] makes it
/// from the client's `headers`, without changing them: for a bodiless request that is
/// not an upgrade, written straight into the request head.
pub(crate) fn each_request_field(
    headers: &HeaderMap,
    fwd: &Forwarded<'_>,
    mut field: impl FnMut(&HeaderName, &HeaderValue),
) {
    let named: Vec<HeaderName> = named_by_connection(headers).collect();
    let replaced = |name: &HeaderName| {
        is_hop_by_hop(name)
            || *name == header::EXPECT
            || [
                X_REQUEST_ID,
                X_FORWARDED_FOR,
                X_FORWARDED_PROTO,
                X_FORWARDED_PORT,
                X_REQUEST_START,
            ]
            .contains(name)
            || named.contains(name)
    };
    for (name, value) in headers {
        if !replaced(name) {
            field(name, value);
        }
    }
    for (name, value) in router_fields(fwd) {
        field(&name, &value);
    }
    field(&header::VIA, &VIA);
}

/// Appends a field line of an HTTP/1.1 head, `name: value`, for the heads the router
/// writes itself (`backend_h1`, `front_h1`). `name` goes as given: a header map's names
/// and the router's own are lowercase already.
pub(crate) fn push_field(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// [`push_field`] for a name as the app wrote it: in lowercase, as hyper writes a header
/// map's.
pub(crate) fn push_field_lowercased(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let start = head.len();
    push_field(head, name, value);
    head[start..start + name.len()].make_ascii_lowercase();
}

/// Turns the backend's response headers into the client's, in place. A `101` keeps
/// `Connection` and `Upgrade`: they are the switch being bridged.
pub(crate) fn prepare_response(headers: &mut HeaderMap, request_id: &HeaderValue, upgrade: bool) {
    // RFC 9112 §6.3: with both, the chunked framing is the real one; the client must not
    // get a `Content-Length` that hyper would then cut the body to.
    if headers.contains_key(header::TRANSFER_ENCODING) {
        headers.remove(header::CONTENT_LENGTH);
    }
    let kept = upgrade.then(|| {
        (
            headers.get(header::UPGRADE).cloned(),
            headers.get(header::CONNECTION).cloned(),
        )
    });
    strip_hop_by_hop(headers);
    if let Some((protocol, connection)) = kept {
        protocol.map(|p| headers.insert(header::UPGRADE, p));
        connection.map(|c| headers.insert(header::CONNECTION, c));
    }
    headers.reserve(2);
    headers.insert(X_REQUEST_ID, request_id.clone());
    headers.append(header::VIA, VIA);
}

/// Headers of a response the router makes itself (error pages, 400, 417).
pub(crate) fn own_response(headers: &mut HeaderMap, request_id: &HeaderValue, html: bool) {
    let kind = if html {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    headers.insert(X_REQUEST_ID, request_id.clone());
    headers.append(header::VIA, VIA);
}

/// Now, as `X-Request-Start` wants it.
pub(crate) fn unix_millis(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("UNWRAP: test header name"),
                HeaderValue::from_str(v).expect("UNWRAP: test header value"),
            );
        }
        h
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().expect("UNWRAP: test values are ASCII"))
            .collect()
    }

    #[test]
    fn request_id_validation_follows_heroku() {
        assert!(is_valid_request_id(b"abcdefghij0123456789"));
        assert!(is_valid_request_id(b"a+b/c=d-e0123456789Z"));
        assert!(!is_valid_request_id(b"abcdefghij012345678"), "19 chars");
        assert!(is_valid_request_id(&[b'a'; 200]));
        assert!(!is_valid_request_id(&[b'a'; 201]));
        assert!(!is_valid_request_id(b"abcdefghij0123456789_"), "underscore");
        assert!(!is_valid_request_id(b"abcdefghij 0123456789"), "space");
    }

    #[test]
    fn request_id_is_kept_or_made() {
        let kept = request_id(&map(&[("x-request-id", "client-chosen-id-0123456789")]));
        assert_eq!(kept, "client-chosen-id-0123456789");
        let made = request_id(&map(&[("x-request-id", "short")]));
        let text = made.to_str().expect("UNWRAP: uuid is ASCII");
        let uuid = uuid::Uuid::parse_str(text).expect("UNWRAP: a uuid was made");
        assert_eq!(uuid.get_version_num(), 4);
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }

    #[test]
    fn forwarded_for_appends_the_client() {
        let client = HeaderValue::from_static("127.0.0.1");
        assert_eq!(forwarded_for(&HeaderMap::new(), &client), "127.0.0.1");
        let chain = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
        ]);
        assert_eq!(
            forwarded_for(&chain, &client),
            "1.2.3.4, 5.6.7.8, 127.0.0.1"
        );
    }

    #[test]
    fn mapped_ipv4_clients_are_dotted() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().expect("UNWRAP: literal");
        assert_eq!(client_ip(mapped).to_string(), "127.0.0.1");
        let v6: SocketAddr = "[::1]:4000".parse().expect("UNWRAP: literal");
        assert_eq!(client_ip(v6).to_string(), "::1");
    }

    #[test]
    fn hop_by_hop_headers_are_removed_with_the_ones_connection_names() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("proxy-authorization", "Basic x"),
            ("proxy-foo", "1"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("content-length", "3"),
            ("x-kept", "1"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "x-kept"]);
    }

    /// What the router tells the backend, for a request that is not an upgrade.
    fn forwarded<'a>(
        request_id: &'a HeaderValue,
        forwarded_for: &'a HeaderValue,
        port: &'a HeaderValue,
    ) -> Forwarded<'a> {
        Forwarded {
            request_id,
            forwarded_for,
            port,
            start_ms: 1_700_000_000_123,
            upgrade: false,
        }
    }

    /// Request id, `X-Forwarded-For` and port values for `Forwarded`.
    fn values() -> (HeaderValue, HeaderValue, HeaderValue) {
        (
            HeaderValue::from_static("id-0123456789abcdefghij"),
            HeaderValue::from_static("10.0.0.1, 127.0.0.1"),
            HeaderValue::from(5006u16),
        )
    }

    #[test]
    fn request_gets_herokus_headers() {
        let (id, xff, port) = values();
        let mut h = map(&[
            ("host", "localhost:5006"),
            ("x-forwarded-proto", "https"),
            ("expect", "100-continue"),
            ("connection", "close"),
            ("via", "1.0 corp"),
        ]);
        let fwd = forwarded(&id, &xff, &port);
        prepare_request(&mut h, &fwd);
        assert_eq!(get(&h, "host"), ["localhost:5006"]);
        assert_eq!(get(&h, "x-request-id"), ["id-0123456789abcdefghij"]);
        assert_eq!(get(&h, "x-forwarded-for"), ["10.0.0.1, 127.0.0.1"]);
        assert_eq!(get(&h, "x-forwarded-proto"), ["http"]);
        assert_eq!(get(&h, "x-forwarded-port"), ["5006"]);
        assert_eq!(get(&h, "x-request-start"), ["1700000000123"]);
        assert_eq!(get(&h, "via"), ["1.0 corp", "1.1 hlocal"]);
        assert!(h.get("expect").is_none() && h.get("connection").is_none());
    }

    #[test]
    fn fields_written_for_a_bodiless_request_are_the_ones_prepare_request_makes() {
        let (id, xff, port) = values();
        let client = map(&[
            ("host", "localhost:5006"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-request-id", "theirs"),
            ("x-request-start", "1"),
            ("expect", "100-continue"),
            ("connection", "keep-alive, X-Secret, host"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "basic x"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("via", "1.0 corp"),
            ("accept", "a"),
            ("accept", "b"),
        ]);
        let fwd = forwarded(&id, &xff, &port);
        let mut prepared = client.clone();
        prepare_request(&mut prepared, &fwd);
        let mut expected: Vec<_> = prepared
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let mut written = Vec::new();
        each_request_field(&client, &fwd, |n, v| written.push((n.clone(), v.clone())));
        let key =
            |(n, v): &(HeaderName, HeaderValue)| (n.as_str().to_owned(), v.as_bytes().to_vec());
        expected.sort_by_key(key);
        written.sort_by_key(key);
        assert_eq!(written, expected);
    }

    #[test]
    fn upgrade_requests_keep_upgrade_and_say_connection_upgrade() {
        let (id, xff, port) = values();
        let mut h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "abc"),
        ]);
        assert!(wants_upgrade(&h));
        let fwd = Forwarded {
            upgrade: true,
            ..forwarded(&id, &xff, &port)
        };
        prepare_request(&mut h, &fwd);
        assert_eq!(get(&h, "upgrade"), ["websocket"]);
        assert_eq!(get(&h, "connection"), ["upgrade"]);
        assert_eq!(get(&h, "sec-websocket-key"), ["abc"]);
        assert!(!wants_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn response_carries_the_request_id_and_via() {
        let id = HeaderValue::from_static("id-0123456789abcdefghij");
        let mut h = map(&[
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("x-request-id", "something-else-from-the-app"),
        ]);
        prepare_response(&mut h, &id, false);
        assert_eq!(get(&h, "x-request-id"), ["id-0123456789abcdefghij"]);
        assert_eq!(get(&h, "via"), ["1.1 hlocal"]);
        assert!(h.get("connection").is_none() && h.get("transfer-encoding").is_none());
        let mut up = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        prepare_response(&mut up, &id, true);
        assert_eq!(get(&up, "connection"), ["Upgrade"]);
        assert_eq!(get(&up, "upgrade"), ["websocket"]);
    }

    fn checked(method: Method, target: &str, h: &HeaderMap) -> Result<(), Cause> {
        let uri: Uri = target.parse().expect("UNWRAP: test target");
        check(&method, &uri, h)
    }

    #[test]
    fn limits_are_herokus_exactly() {
        let ok = HeaderMap::new();
        // "GET " + target + " HTTP/1.1" = 8192 bytes.
        let target = format!("/{}", "a".repeat(MAX_LINE - 14));
        assert_eq!(checked(Method::GET, &target, &ok), Ok(()));
        let target = format!("/{}", "a".repeat(MAX_LINE - 13));
        assert_eq!(
            checked(Method::GET, &target, &ok),
            Err(Cause::BadRequestLine)
        );
        // "x-big: " + value = 8192 bytes.
        let h = map(&[("x-big", &"v".repeat(MAX_LINE - 7))]);
        assert_eq!(checked(Method::GET, "/", &h), Ok(()));
        let h = map(&[("x-big", &"v".repeat(MAX_LINE - 6))]);
        assert_eq!(checked(Method::GET, "/", &h), Err(Cause::BadHeader));
        let h = map(&[(&"n".repeat(MAX_NAME + 1), "v")]);
        assert_eq!(checked(Method::GET, "/", &h), Err(Cause::BadHeader));
    }

    #[test]
    fn header_count_host_connect_and_expect() {
        let mut h = HeaderMap::new();
        for i in 0..MAX_HEADERS {
            h.append("x-n", HeaderValue::from(i));
        }
        assert_eq!(checked(Method::GET, "/", &h), Ok(()));
        h.append("x-n", HeaderValue::from(0));
        assert_eq!(checked(Method::GET, "/", &h), Err(Cause::BadHeader));
        let two_hosts = map(&[("host", "a"), ("host", "b")]);
        assert_eq!(checked(Method::GET, "/", &two_hosts), Err(Cause::BadHeader));
        assert_eq!(
            checked(Method::CONNECT, "example.com:443", &HeaderMap::new()),
            Err(Cause::UnsupportedMethod)
        );
        let cont = map(&[("expect", "100-Continue")]);
        assert_eq!(checked(Method::POST, "/", &cont), Ok(()));
        let other = map(&[("expect", "100-continue, auth")]);
        assert_eq!(
            checked(Method::POST, "/", &other),
            Err(Cause::UnsupportedExpect)
        );
    }

    #[test]
    fn a_head_over_1_mib_is_refused_even_with_every_line_within_limits() {
        let mut h = HeaderMap::new();
        for i in 0..130 {
            h.append(
                HeaderName::from_bytes(format!("x-{i}").as_bytes()).expect("UNWRAP: literal"),
                HeaderValue::from_str(&"v".repeat(8100)).expect("UNWRAP: literal"),
            );
        }
        assert_eq!(checked(Method::GET, "/", &h), Err(Cause::BadHeader));
    }

    #[test]
    fn http11_needs_a_host_and_connection_host_keeps_it() {
        let none = HeaderMap::new();
        assert_eq!(check_host(Version::HTTP_11, &none), Err(Cause::MissingHost));
        assert_eq!(check_host(Version::HTTP_10, &none), Ok(()));
        let mut h = map(&[
            ("host", "a"),
            ("connection", "host, x-gone"),
            ("x-gone", "1"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(get(&h, "host"), ["a"]);
        assert!(h.get("x-gone").is_none());
    }

    #[test]
    fn absolute_targets_count_in_full() {
        let uri: Uri = "http://example.com/abc".parse().expect("UNWRAP: literal");
        assert_eq!(target_len(&uri), "http://example.com/abc".len());
    }
}

/// Property tests (the repo's fuzzing): arbitrary client headers through the router's rules.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// Names the rules care about, plus arbitrary tokens.
    fn name() -> impl Strategy<Value = HeaderName> {
        let known = prop::sample::select(vec![
            "connection",
            "keep-alive",
            "proxy-authorization",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "expect",
            "host",
            "x-request-id",
            "x-forwarded-for",
            "x-custom",
        ])
        .prop_map(HeaderName::from_static);
        let token = "[a-z0-9-]{1,12}".prop_filter_map("a header name", |s| {
            HeaderName::from_bytes(s.as_bytes()).ok()
        });
        prop_oneof![known, token]
    }

    /// Any bytes a header value may hold on the wire, and now and then a list of names or a
    /// request-id-shaped value, which arbitrary bytes would almost never be.
    fn value() -> impl Strategy<Value = HeaderValue> {
        let byte = prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff];
        let bytes = prop::collection::vec(byte, 0..300);
        let shaped = "([a-z-]{1,12}, ?){0,4}|[A-Za-z0-9+/=-]{15,210}".prop_map(String::into_bytes);
        prop_oneof![bytes, shaped]
            .prop_filter_map("a header value", |b| HeaderValue::from_bytes(&b).ok())
    }

    fn headers() -> impl Strategy<Value = HeaderMap> {
        prop::collection::vec((name(), value()), 0..20).prop_map(|pairs| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(name, value);
            }
            map
        })
    }

    proptest! {
        #[test]
        fn check_decides_without_panicking(headers in headers(), target in "\\PC{0,300}") {
            if let Ok(uri) = target.parse::<Uri>() {
                let _ = check(&Method::GET, &uri, &headers);
            }
        }

        #[test]
        fn request_id_is_always_valid_and_the_clients_when_it_can_be(headers in headers()) {
            let id = request_id(&headers);
            prop_assert!(is_valid_request_id(id.as_bytes()), "{id:?}");
            if let Some(sent) = headers.get(X_REQUEST_ID) {
                prop_assert_eq!(is_valid_request_id(sent.as_bytes()), sent == id);
            }
        }

        #[test]
        fn forwarded_for_ends_with_the_client(headers in headers()) {
            let client = HeaderValue::from_static("203.0.113.9");
            let chain = forwarded_for(&headers, &client);
            prop_assert!(chain.as_bytes().ends_with(client.as_bytes()));
        }

        #[test]
        fn backend_gets_no_hop_by_hop_fields_and_the_routers_own(mut headers in headers()) {
            // The fields the router sets itself come back, and these three tokens are options.
            let kept = ["keep-alive", "close", "upgrade", "x-request-id", "x-forwarded-for",
                "x-forwarded-proto", "x-forwarded-port", "x-request-start", "via"];
            let named: Vec<String> = connection_tokens(&headers)
                .map(|t| String::from_utf8_lossy(t).to_ascii_lowercase())
                .filter(|t| !kept.contains(&t.as_str()))
                .collect();
            let request_id = HeaderValue::from_static("abcdefghij0123456789");
            let forwarded_for = HeaderValue::from_static("203.0.113.9");
            let port = HeaderValue::from_static("80");
            let fwd = Forwarded {
                request_id: &request_id,
                forwarded_for: &forwarded_for,
                port: &port,
                start_ms: 1,
                upgrade: false,
            };
            prepare_request(&mut headers, &fwd);
            for name in headers.keys() {
                prop_assert!(!is_hop_by_hop(name), "{name} forwarded");
                prop_assert!(!named.iter().any(|n| n == name.as_str()), "{name} named by Connection");
                prop_assert!(name != header::EXPECT);
            }
            prop_assert_eq!(get_one(&headers, X_REQUEST_ID), Some(&request_id));
            prop_assert_eq!(get_one(&headers, X_FORWARDED_FOR), Some(&forwarded_for));
        }
    }

    /// The value of a field that must appear exactly once.
    fn get_one(headers: &HeaderMap, name: HeaderName) -> Option<&HeaderValue> {
        let mut all = headers.get_all(name).iter();
        all.next().filter(|_| all.next().is_none())
    }
}
