//! Compressed bodies, as DynamoDB takes and gives them: gzip and deflate request bodies
//! (`Content-Encoding`), and responses over 4 KiB compressed with gzip or deflate when the
//! client accepts one. Responses are compressed by tower-http's `CompressionLayer`; request
//! bodies are decoded here with flate2, because DynamoDB takes what tower-http's request
//! decompression does not (a gzip body of several members) and answers differently:
//!
//! - a request in an encoding other than gzip, deflate or identity, or a body that does not
//!   decode (empty, cut short, followed by junk), is answered 500 InternalServerError
//!   (DynamoDB's answers, pinned by the acceptance suite), and nothing runs;
//! - a body that decodes to more than DynamoDB's 16 MB limit is answered 413;
//! - the encoding of a response is chosen by DynamoDB's reading of `Accept-Encoding`
//!   ([`negotiate`]), and the header is rewritten to that one choice before tower-http sees it;
//! - a compressed response drops `x-amz-crc32`, which covers the uncompressed body here (the
//!   SDKs check the header only when it is present).

use std::io::Read;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{MAX_BODY_BYTES, dispatch};

/// Responses smaller than this are never compressed (DynamoDB's threshold).
pub const COMPRESSION_THRESHOLD: u16 = 4096;

/// A content coding the node compresses responses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// gzip.
    Gzip,
    /// deflate (zlib).
    Deflate,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

/// The q-value of one `Accept-Encoding` entry's parameters, as DynamoDB reads them: the first
/// parameter holding `q=` gives it (what follows `q=`, trimmed); a value that is not a number
/// counts as 1, one above 1 as 1; no such parameter: 1.
fn quality<'a>(mut parameters: impl Iterator<Item = &'a str>) -> f64 {
    let Some(parameter) = parameters.find(|p| p.contains("q=")) else {
        return 1.0;
    };
    let value = parameter
        .split_once("q=")
        .map_or("", |(_, value)| value)
        .trim();
    value.parse::<f64>().map_or(1.0, |q| q.min(1.0))
}

/// The coding DynamoDB would answer `accept_encoding` with, if any: the gzip or deflate entry of
/// the highest q-value (above 0), the first listed among equals; `*` stands for a coding not
/// listed (gzip before deflate) and loses ties to listed ones; `identity` and unknown codings
/// are ignored.
pub fn negotiate(accept_encoding: &str) -> Option<Coding> {
    // (q-value, rank: position for listed codings, after every listed one for `*`, coding)
    let mut candidates: Vec<(f64, usize, Coding)> = Vec::new();
    let mut listed = Vec::new();
    let mut wildcard: Option<f64> = None;
    let entries = accept_encoding.split(',').map(str::trim);
    for (position, entry) in entries.filter(|e| !e.is_empty()).enumerate() {
        let mut parts = entry.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let q = quality(parts);
        let coding = if name.eq_ignore_ascii_case("gzip") {
            Coding::Gzip
        } else if name.eq_ignore_ascii_case("deflate") {
            Coding::Deflate
        } else {
            if name == "*" {
                wildcard = Some(wildcard.map_or(q, |w| w.max(q)));
            }
            continue;
        };
        listed.push(coding);
        candidates.push((q, position, coding));
    }
    if let Some(q) = wildcard {
        for (offset, coding) in [Coding::Gzip, Coding::Deflate].into_iter().enumerate() {
            if !listed.contains(&coding) {
                candidates.push((q, usize::MAX - 1 + offset, coding));
            }
        }
    }
    candidates
        .into_iter()
        .filter(|(q, _, _)| *q > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, _, coding)| coding)
}

/// Why a request body does not decode.
enum Undecodable {
    /// Over [`MAX_BODY_BYTES`] once decoded.
    TooLarge,
    /// Not in the coding it names.
    Broken(String),
}

/// `body` decoded from `coding` (`gzip`: one member or more; `deflate`: one zlib stream).
fn decode(coding: &str, body: &[u8]) -> Result<Vec<u8>, Undecodable> {
    if body.is_empty() {
        return Err(Undecodable::Broken(format!("an empty {coding} body")));
    }
    let limit = MAX_BODY_BYTES as u64 + 1;
    let mut out = Vec::new();
    let broken = |e: std::io::Error| Undecodable::Broken(format!("not {coding}: {e}"));
    if coding.eq_ignore_ascii_case("gzip") {
        flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out)
            .map_err(broken)?;
    } else {
        let mut decoder = flate2::read::ZlibDecoder::new(body);
        (&mut decoder)
            .take(limit)
            .read_to_end(&mut out)
            .map_err(broken)?;
        if decoder.total_in() != body.len() as u64 && out.len() as u64 != limit {
            return Err(Undecodable::Broken(
                "data after the end of the deflate stream".into(),
            ));
        }
    }
    match out.len() as u64 >= limit {
        true => Err(Undecodable::TooLarge),
        false => Ok(out),
    }
}

/// `request` with its body decoded from its `Content-Encoding`, or the answer refusing it.
async fn decoded(request: Request) -> Result<Request, Response> {
    let Some(coding) = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|c| c.to_str().unwrap_or_default().trim().to_string())
    else {
        return Ok(request);
    };
    match coding.to_ascii_lowercase().as_str() {
        "identity" => return Ok(request),
        "gzip" | "deflate" => {}
        _ => {
            return Err(dispatch::refusal(ApiError::internal(format!(
                "Unsupported Content-Encoding: {coding}"
            ))));
        }
    }
    let (mut parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response())?;
    let decoded = decode(&coding, &body).map_err(|e| match e {
        Undecodable::TooLarge => {
            (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response()
        }
        Undecodable::Broken(why) => dispatch::refusal(ApiError::internal(format!(
            "The request body cannot be read: {why}"
        ))),
    })?;
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Request::from_parts(parts, decoded.into()))
}

/// Before the handlers: decodes compressed request bodies, refuses codings DynamoDB does not
/// take, and narrows `Accept-Encoding` to DynamoDB's choice for tower-http's compression.
pub async fn prepare(request: Request, next: Next) -> Response {
    let mut request = match decoded(request).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let accepted: Vec<&str> = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let chosen = negotiate(&accepted.join(","));
    let headers = request.headers_mut();
    headers.remove(header::ACCEPT_ENCODING);
    if let Some(coding) = chosen {
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static(coding.name()),
        );
    }
    let mut response = next.run(request).await;
    if response.headers().contains_key(header::CONTENT_ENCODING) {
        response.headers_mut().remove("x-amz-crc32");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_as_dynamodb_reads_it() {
        use Coding::{Deflate, Gzip};
        // The cases of the acceptance suite's test_accept_encoding_header, checked against AWS.
        for (header, expected) in [
            ("identity", None),
            ("", None),
            ("br", None),
            ("zstd", None),
            ("compress", None),
            ("x-gzip", None),
            ("gzip, deflate", Some(Gzip)),
            ("br, identity, deflate, gzip", Some(Deflate)),
            ("GZIP, identity", Some(Gzip)),
            ("dog, gzip ,, cat", Some(Gzip)),
            ("gzip;q=0.8, deflate;q=0.5", Some(Gzip)),
            (
                "br, gzip;q=0, deflate; q = 0.5 , identity;q=0",
                Some(Deflate),
            ),
            ("*", Some(Gzip)),
            ("*, deflate;q=0.5", Some(Gzip)),
            ("*, deflate", Some(Deflate)),
            ("*, identity", Some(Gzip)),
            ("*, gzip;q=0.5", Some(Deflate)),
            ("gzip ;q=0", None),
            ("identity;q=0", None),
            ("*;q=0", None),
            ("*;q=0.5,identity", Some(Gzip)),
            ("gzip;q=0.5,identity;q=0.8", Some(Gzip)),
            ("br;q=0.8,identity;q=0.5,*;q=0", None),
            ("\"gzip\"", None),
            ("gzip br", None),
            ("gzip:q=1", None),
            ("deflate;q=0.5, gzip;q=31", Some(Gzip)),
            ("gzip;q=31,deflate;q=51", Some(Gzip)),
            ("deflate;q=0.5, gzip;q=0.2", Some(Deflate)),
            ("deflate;q=0.5, gzip;q=1;q=0.2", Some(Gzip)),
            ("deflate;q=0.5,gzip;q=0.", Some(Deflate)),
            ("deflate;q=0.5,gzip;q=0.x", Some(Gzip)),
            ("deflate;q=0.5,gzip;q=0. x", Some(Gzip)),
            ("deflate;q=-0.5,gzip;q=0.2", Some(Gzip)),
            ("gzip;q= 0;q=1", None),
            ("gzip;q =0;q=1", Some(Gzip)),
            ("gzip; q=0;q=1", None),
            ("gzip;nq=0;q=1", None),
            ("gzip;q=0, gzip;q=1, gzip;q=0", Some(Gzip)),
            ("br,identity;q=0.5,gzip;q=0.0001", Some(Gzip)),
        ] {
            assert_eq!(negotiate(header), expected, "Accept-Encoding: {header}");
        }
    }
}
