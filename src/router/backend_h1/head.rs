//! A backend's response head: parsed as hyper's client parses it (httparse, 100 headers,
//! a 1xx head skipped by the caller), and in the same pass over its fields what the
//! router needs to know about it: how its body is framed (RFC 9112 §6.3) and whether the
//! connection can carry another request.
//!
//! Hop-by-hop fields (RFC 9110 §7.6.1, the `Proxy-*` family, and what `Connection`
//! names) are not kept for the client's response: the router would only remove them
//! again. Nor is `Content-Length` next to `Transfer-Encoding` (the chunked framing is the
//! real one), nor `X-Request-Id` (the router sends its own). What is kept stays where it
//! came, in the head's bytes ([`Fields`]): the router's own server writes it from there,
//! and only a response hyper's server sends needs a header map made of it (building one
//! cost a tenth of a proxied request's instructions).

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode, Version};

use super::chunked::Chunked;
use super::{Fault, Framing};
use crate::router::headers::{self, tokens};

/// hyper's client limit: more headers is a malformed response.
const MAX_HEADERS: usize = 100;
/// `http`'s limit on a header name; httparse has none.
const MAX_NAME: usize = (1 << 16) - 1;

/// A response head and what its fields say about the connection.
pub(super) struct Head {
    /// The status, version and reason; its header map is empty (see `fields`).
    pub(super) response: Response<()>,
    /// The fields the client's response keeps.
    pub(super) fields: Fields,
    /// Each `Transfer-Encoding` value was seen; `Some(true)` if the last coding is
    /// `chunked`.
    chunked: Option<bool>,
    /// The `Content-Length`, every value of which agreed; `Err` if they did not, or one
    /// is not a number (a fault only if the body is not chunked, as for hyper).
    length: Result<Option<u64>, Fault>,
    /// `Connection: close` / `keep-alive` were seen.
    close: bool,
    keep_alive: bool,
    /// `Connection` names a field to leave out (rare: most say only `keep-alive`).
    names_fields: bool,
}

/// A whole head at the start of `buf`, taken out of it; `None` if more must be read.
pub(super) fn parse(buf: &mut BytesMut) -> Result<Option<Head>, Fault> {
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Fault::Malformed),
    };
    let status =
        StatusCode::from_u16(parsed.code.unwrap_or_default()).map_err(|_| Fault::Malformed)?;
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let reason = match parsed.reason {
        Some(r) if Some(r) != status.canonical_reason() => {
            Some(hyper::ext::ReasonPhrase::try_from(r.as_bytes()).map_err(|_| Fault::Malformed)?)
        }
        _ => None,
    };
    let mut head = Head {
        response: Response::new(()),
        fields: Fields::default(),
        chunked: None,
        length: Ok(None),
        close: false,
        keep_alive: false,
        names_fields: false,
    };
    // Where each kept field's name and value lie in the head, which then becomes shared.
    let mut kept = Vec::with_capacity(parsed.headers.len());
    for field in parsed.headers.iter() {
        if field.name.len() > MAX_NAME {
            return Err(Fault::Malformed);
        }
        if head.note(field.name, field.value)? {
            let name = offset_in(buf, field.name.as_bytes());
            let value = offset_in(buf, field.value);
            kept.push((
                name..name + field.name.len(),
                value..value + field.value.len(),
            ));
        }
    }
    // Known only once every field is seen, and rare: a second pass only then.
    if head.names_fields {
        let named = connection_named(parsed.headers);
        kept.retain(|(name, _)| {
            !named
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&buf[name.clone()]))
        });
    }
    if head.chunked.is_some() {
        kept.retain(|(name, _)| !buf[name.clone()].eq_ignore_ascii_case(b"content-length"));
    }
    let bytes = buf.split_to(len).freeze();
    head.fields = Fields { head: bytes, kept };
    *head.response.status_mut() = status;
    *head.response.version_mut() = version;
    if let Some(reason) = reason {
        head.response.extensions_mut().insert(reason);
    }
    Ok(Some(head))
}

/// The fields of a response head that the client's response keeps, in their order: the
/// head's bytes and where each kept name and value lie in them.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    head: Bytes,
    kept: Vec<(Range<usize>, Range<usize>)>,
}

impl Fields {
    /// Each field's name (as the backend wrote it) and value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.kept
            .iter()
            .map(|(name, value)| (&self.head[name.clone()], &self.head[value.clone()]))
    }

    /// Appends the fields to `map`; values share the head's bytes.
    pub(crate) fn into_map(self, map: &mut HeaderMap) {
        map.reserve(self.kept.len());
        for (name, value) in self.kept {
            // Never fails: httparse accepts only token names (and `parse` only those
            // `http` takes), and values without control characters but tab.
            let name = HeaderName::from_bytes(&self.head[name]);
            let value = HeaderValue::from_maybe_shared(self.head.slice(value));
            if let (Ok(name), Ok(value)) = (name, value) {
                map.append(name, value);
            }
        }
    }
}

impl Head {
    /// Takes note of a field; whether it belongs in the client's response.
    fn note(&mut self, name: &str, value: &[u8]) -> Result<bool, Fault> {
        match name.len() {
            10 if name.eq_ignore_ascii_case("connection") => {
                for token in tokens(value) {
                    self.close |= token.eq_ignore_ascii_case(b"close");
                    self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                    self.names_fields |= headers::names_a_field(token);
                }
                Ok(false)
            }
            14 if name.eq_ignore_ascii_case("content-length") => {
                self.length = self.length.and_then(|known| agreed_length(known, value));
                Ok(true)
            }
            // The router's own id goes in its place (`headers::prepare_response`).
            12 if name.eq_ignore_ascii_case("x-request-id") => Ok(false),
            17 if name.eq_ignore_ascii_case("transfer-encoding") => {
                let last = tokens(value).next_back();
                self.chunked = Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
                Ok(false)
            }
            _ => Ok(!headers::is_hop_by_hop_name(name)),
        }
    }

    /// How the body (of a response to `method`) ends; `None` for a 1xx head, which
    /// another head follows.
    pub(super) fn framing(&self, method: &Method) -> Result<Option<Framing>, Fault> {
        let status = self.response.status();
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            return Ok(None);
        }
        if status == StatusCode::SWITCHING_PROTOCOLS
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || method == Method::HEAD
        {
            return Ok(Some(Framing::Done));
        }
        Ok(Some(match (self.chunked, self.length) {
            (Some(_), _) if self.response.version() == Version::HTTP_10 => {
                return Err(Fault::Malformed);
            }
            (Some(true), _) => Framing::Chunked(Chunked::default()),
            (Some(false), _) | (None, Ok(None)) => Framing::UntilClose,
            (None, Ok(Some(0))) => Framing::Done,
            (None, Ok(Some(len))) => Framing::Length(len),
            (None, Err(fault)) => return Err(fault),
        }))
    }

    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub(super) fn keeps_alive(&self) -> bool {
        !self.close && (self.response.version() == Version::HTTP_11 || self.keep_alive)
    }
}

/// The fields `Connection` names for removal, besides the ones that are always removed
/// (`Connection: host` must not take `Host` away, RFC 9110 §7.6.1). Almost always none.
fn connection_named<'h>(fields: &[httparse::Header<'h>]) -> Vec<&'h [u8]> {
    let connection = fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("connection"));
    connection
        .flat_map(|f| tokens(f.value))
        .filter(|t| headers::names_a_field(t))
        .collect()
}

/// `known` and every number in a `Content-Length` value (comma-separated lists too), if
/// they are all the same.
fn agreed_length(mut known: Option<u64>, value: &[u8]) -> Result<Option<u64>, Fault> {
    // Empty parts are kept here: `7,` is not a length.
    for part in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(Fault::Malformed);
        }
        let n = part.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0'));
        if known.is_some_and(|k| k != n) {
            return Err(Fault::Malformed);
        }
        known = Some(n);
    }
    Ok(known)
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, Fault> {
        let mut buf = BytesMut::from(text.as_bytes());
        parse(&mut buf).map(|head| head.expect("a whole head"))
    }

    fn framing_of(text: &str, method: &Method) -> Result<Option<Framing>, Fault> {
        head(text)?.framing(method)
    }

    #[test]
    fn content_lengths_must_agree_and_be_digits() {
        let get = Method::GET;
        let sized = |fields: &str| framing_of(&format!("HTTP/1.1 200 OK\r\n{fields}\r\n"), &get);
        assert_eq!(
            sized("Content-Length: 42\r\n"),
            Ok(Some(Framing::Length(42)))
        );
        assert_eq!(
            sized("Content-Length: 7, 7\r\nContent-Length: 7\r\n"),
            Ok(Some(Framing::Length(7)))
        );
        assert_eq!(sized("Content-Length: 0\r\n"), Ok(Some(Framing::Done)));
        assert_eq!(sized(""), Ok(Some(Framing::UntilClose)));
        for bad in ["7\r\nContent-Length: 8", "+7", "7,", "99999999999999999999"] {
            assert_eq!(
                sized(&format!("Content-Length: {bad}\r\n")),
                Err(Fault::Malformed),
                "{bad}"
            );
        }
        // Next to chunked framing, a length is ignored, even a broken one, as hyper does.
        let both = sized("Content-Length: x\r\nTransfer-Encoding: chunked\r\n");
        assert!(matches!(both, Ok(Some(Framing::Chunked(_)))));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let get = Method::GET;
        let chunked = framing_of(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            &get,
        );
        assert!(matches!(chunked, Ok(Some(Framing::Chunked(_)))));
        let gzip = framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &get);
        assert_eq!(gzip, Ok(Some(Framing::UntilClose)));
        let old = framing_of(
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &get,
        );
        assert_eq!(old, Err(Fault::Malformed));
        let sized = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(framing_of(sized, &Method::HEAD), Ok(Some(Framing::Done)));
        for (status, framing) in [
            ("103", None),
            ("100", None),
            ("304", Some(Framing::Done)),
            ("204", Some(Framing::Done)),
        ] {
            let text = format!("HTTP/1.1 {status} X\r\nContent-Length: 3\r\n\r\n");
            assert_eq!(framing_of(&text, &Method::HEAD), Ok(framing), "{status}");
        }
    }

    #[test]
    fn connections_are_kept_as_the_response_allows() {
        let keeps = |text: &str| head(text).expect("valid").keeps_alive();
        assert!(keeps("HTTP/1.1 200 OK\r\n\r\n"));
        assert!(!keeps(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n\r\n"
        ));
        assert!(!keeps("HTTP/1.0 200 OK\r\n\r\n"));
        assert!(keeps("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!keeps(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
        ));
    }

    #[test]
    fn hop_by_hop_fields_what_connection_names_and_the_request_id_are_left_out() {
        let parsed = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret, host\r\nKeep-Alive: timeout=5\r\n\
             Proxy-Authenticate: x\r\nX-Secret: 1\r\nHost: h\r\nTrailer: T\r\nUpgrade: u\r\n\
             Transfer-Encoding: chunked\r\nContent-Length: 3\r\nX-Request-ID: app\r\n\
             X-Kept: yes\r\n\r\n",
        )
        .expect("valid");
        let mut names: Vec<_> = parsed.fields.iter().map(|(name, _)| name).collect();
        names.sort_unstable();
        assert_eq!(names, [&b"Host"[..], b"X-Kept"]);
    }

    #[test]
    fn a_head_keeps_its_values_and_an_unusual_reason() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 Fine\r\nA: 1\r\nB: two words\r\n\r\nbody"[..]);
        let Head {
            response, fields, ..
        } = parse(&mut buf).expect("valid").expect("whole");
        assert!(response.headers().is_empty(), "the fields stay in the head");
        let mut map = HeaderMap::new();
        fields.into_map(&mut map);
        assert_eq!(map["b"], "two words");
        assert_eq!(map.len(), 2);
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .expect("reason");
        assert_eq!(reason.as_bytes(), b"Fine");
        assert_eq!(&buf[..], b"body");
        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nA: 1\r\n"[..]);
        assert!(matches!(parse(&mut partial), Ok(None)));
        let mut junk = BytesMut::from(&b"NOT HTTP\r\n\r\n"[..]);
        assert!(parse(&mut junk).is_err());
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).err(),
            Some(Fault::Malformed)
        );
    }
}
