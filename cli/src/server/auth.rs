//! AWS Signature Version 4 authentication of requests, when the node has keys
//! (`--credentials FILE` or `TIDEMARK_CREDENTIALS`): the signature a client sent, in the
//! `Authorization` header or in a presigned query, is computed again with the `aws-sigv4`
//! crate from the request and the key's secret, and compared in constant time.
//!
//! Checks run in DynamoDB's order, each with its error: no signature at all
//! (MissingAuthenticationTokenException), a malformed one (IncompleteSignatureException), a
//! date outside 15 minutes of the node's clock or a scope that is not `dynamodb`'s
//! (InvalidSignatureException), an unknown key (UnrecognizedClientException), then the
//! signature itself (InvalidSignatureException). The region of the scope is the client's
//! choice: the signature covers it, and a node answers for any region it is called under.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningParams, SigningSettings, sign,
};
use axum::http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// How far a request's date may be from the node's clock.
const ALLOWED_SKEW: Duration = Duration::from_secs(15 * 60);
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The signing name of DynamoDB and DynamoDB Streams.
const SERVICE: &str = "dynamodb";
const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The access keys a node accepts, with their secrets.
#[derive(Clone, Default)]
pub struct Credentials {
    secrets: HashMap<String, String>,
}

impl std::fmt::Debug for Credentials {
    /// Names the keys, never the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.secrets.keys().collect();
        keys.sort();
        f.debug_struct("Credentials").field("keys", &keys).finish()
    }
}

/// Why text is not a node's keys ([`Credentials::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// A line that is not a key and a secret (lines count from 1).
    #[error("line {line}: expected ACCESS_KEY_ID SECRET, separated by a space")]
    NotAKey {
        /// Its number.
        line: usize,
    },
    /// Not one key.
    #[error("no keys: expected lines of ACCESS_KEY_ID SECRET")]
    NoKeys,
}

/// Why a keys file cannot be used ([`Credentials::load`]): the node refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsFileError {
    /// The file cannot be read.
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The file is not keys.
    #[error("{}: {reason}", path.display())]
    NotKeys {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong in it.
        reason: CredentialsError,
    },
}

impl Credentials {
    /// Parses lines of `ACCESS_KEY_ID SECRET` (blank lines and `#` comments are skipped).
    ///
    /// # Errors
    /// The first line that is not a key and a secret, or no key at all.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let mut secrets = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(key), Some(secret), None) => {
                    secrets.insert(key.to_string(), secret.to_string());
                }
                _ => return Err(CredentialsError::NotAKey { line: number + 1 }),
            }
        }
        if secrets.is_empty() {
            return Err(CredentialsError::NoKeys);
        }
        Ok(Credentials { secrets })
    }

    /// The keys of the file at `path` ([`Credentials::parse`]).
    ///
    /// # Errors
    /// The file cannot be read, or is not keys.
    pub fn load(path: &std::path::Path) -> Result<Credentials, CredentialsFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|reason| CredentialsFileError::Unreadable {
                path: path.to_path_buf(),
                reason,
            })?;
        Credentials::parse(&text).map_err(|reason| CredentialsFileError::NotKeys {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Checks the signature of a request ([module docs](self)); `now` is the node's clock.
    ///
    /// # Errors
    /// DynamoDB's authentication errors.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), ApiError> {
        let signed = Signed::of(uri, headers)?;
        let time = check_date(&signed.date, now, signed.expires)?;
        let scope: Vec<&str> = signed.credential.split('/').collect();
        let [key, day, region, service, terminator] = scope[..] else {
            return Err(incomplete(format!(
                "Credential should be scoped to a valid region, not '{}'. Authorization={}",
                scope.get(2).copied().unwrap_or_default(),
                signed.credential
            )));
        };
        if terminator != "aws4_request" {
            return Err(invalid_signature(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
            )));
        }
        if !signed.date.starts_with(day) || day.len() != 8 {
            return Err(invalid_signature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{day}' != '{}', from '{}'.",
                signed.date.get(..8).unwrap_or_default(),
                signed.date
            )));
        }
        if service != SERVICE {
            return Err(invalid_signature(format!(
                "Credential should be scoped to correct service: '{SERVICE}'. "
            )));
        }
        let Some(secret) = self.secrets.get(key) else {
            return Err(ApiError::coral(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        };
        let request = Request {
            method,
            uri,
            headers,
            body,
        };
        let expected = expected_signature(&signed, &request, time, key, secret, region)?;
        match bool::from(expected.as_bytes().ct_eq(signed.signature.as_bytes())) {
            true => Ok(()),
            false => Err(invalid_signature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            )),
        }
    }
}

fn incomplete(message: impl Into<String>) -> ApiError {
    ApiError::coral("IncompleteSignatureException", message)
}

fn invalid_signature(message: impl Into<String>) -> ApiError {
    ApiError::coral("InvalidSignatureException", message)
}

/// What a request says of its signature.
#[derive(Debug)]
struct Signed {
    credential: String,
    /// Lowercase header names, as signed.
    signed_headers: Vec<String>,
    signature: String,
    date: String,
    /// For a presigned query: how long it is valid.
    expires: Option<Duration>,
    /// Whether the signature is in the query.
    presigned: bool,
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    let query = uri.query().unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_encoding::percent_decode_str(text)
                    .decode_utf8_lossy()
                    .to_string()
            };
            (decode(name), decode(value))
        })
        .collect()
}

impl Signed {
    fn of(uri: &Uri, headers: &HeaderMap) -> Result<Signed, ApiError> {
        let query = query_pairs(uri);
        let param = |name: &str| {
            query
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        if let Some(algorithm) = param("X-Amz-Algorithm") {
            return Signed::presigned(&algorithm, param);
        }
        let Some(authorization) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(ApiError::coral(
                "MissingAuthenticationTokenException",
                "Request is missing Authentication Token",
            ));
        };
        let (algorithm, rest) = authorization
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((authorization.trim(), ""));
        if algorithm != ALGORITHM {
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'"
            )));
        }
        let mut parts: HashMap<&str, &str> = HashMap::new();
        for part in rest
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            let Some((name, value)) = part.split_once('=') else {
                return Err(incomplete(format!(
                    "Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and encoded with Base64): '{part}'."
                )));
            };
            parts.insert(name, value);
        }
        let date = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut missing = Vec::new();
        for name in ["Credential", "Signature", "SignedHeaders"] {
            if !parts.contains_key(name) {
                missing.push(format!("Authorization header requires '{name}' parameter."));
            }
        }
        if date.is_none() {
            missing.push(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            );
        }
        let (Some(credential), Some(signature), Some(signed_headers), Some(date), true) = (
            parts.get("Credential"),
            parts.get("Signature"),
            parts.get("SignedHeaders"),
            date,
            missing.is_empty(),
        ) else {
            return Err(incomplete(format!(
                "{} Authorization={authorization}",
                missing.join(" ")
            )));
        };
        Ok(Signed {
            credential: credential.to_string(),
            signed_headers: header_names(signed_headers),
            signature: signature.to_string(),
            date,
            expires: None,
            presigned: false,
        })
    }

    fn presigned(
        algorithm: &str,
        param: impl Fn(&str) -> Option<String>,
    ) -> Result<Signed, ApiError> {
        if algorithm != ALGORITHM {
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'"
            )));
        }
        let mut missing = Vec::new();
        let mut get = |name: &str| {
            let value = param(name);
            if value.is_none() {
                missing.push(format!(
                    "AWS query-string parameters must include '{name}'."
                ));
            }
            value
        };
        let values = (
            get("X-Amz-Credential"),
            get("X-Amz-Signature"),
            get("X-Amz-SignedHeaders"),
            get("X-Amz-Date"),
            get("X-Amz-Expires"),
        );
        let (Some(credential), Some(signature), Some(signed_headers), Some(date), Some(expires)) =
            values
        else {
            return Err(incomplete(format!(
                "{} Re-examine the query-string parameters.",
                missing.join(" ")
            )));
        };
        let expires = expires.parse::<u64>().map_err(|_| {
            incomplete(format!(
                "X-Amz-Expires should be a number of seconds, not '{expires}'."
            ))
        })?;
        Ok(Signed {
            credential,
            signed_headers: header_names(&signed_headers),
            signature,
            date,
            expires: Some(Duration::from_secs(expires)),
            presigned: true,
        })
    }
}

/// The lowercase names of a `SignedHeaders` list.
fn header_names(list: &str) -> Vec<String> {
    list.split(';').map(str::to_ascii_lowercase).collect()
}

fn stamp(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format(DATE_FORMAT)
        .to_string()
}

/// The request's signing time.
fn parse_date(date: &str) -> Result<SystemTime, ApiError> {
    chrono::NaiveDateTime::parse_from_str(date, DATE_FORMAT)
        .map(|t| SystemTime::from(t.and_utc()))
        .map_err(|_| {
            incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })
}

/// A signature made more than [`ALLOWED_SKEW`] from `now` is refused (a presigned one also once
/// its validity has passed). Returns the signing time.
fn check_date(
    date: &str,
    now: SystemTime,
    expires: Option<Duration>,
) -> Result<SystemTime, ApiError> {
    let signed_at = parse_date(date)?;
    let earliest = now
        .checked_sub(ALLOWED_SKEW)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let latest = now + ALLOWED_SKEW;
    if let Some(valid_for) = expires
        && signed_at + valid_for < now
    {
        return Err(ApiError::coral(
            "AccessDeniedException",
            "Request has expired",
        ));
    }
    if expires.is_none() && signed_at < earliest {
        return Err(invalid_signature(format!(
            "Signature expired: {date} is now earlier than {} ({} - 15 min.)",
            stamp(earliest),
            stamp(now)
        )));
    }
    if signed_at > latest {
        return Err(invalid_signature(format!(
            "Signature not yet current: {date} is still later than {} ({} + 15 min.)",
            stamp(latest),
            stamp(now)
        )));
    }
    Ok(signed_at)
}

/// The parts of a request its signature covers.
struct Request<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

/// The signature of `request` as the key's secret makes it, at `time`.
fn expected_signature(
    signed: &Signed,
    request: &Request<'_>,
    time: SystemTime,
    key: &str,
    secret: &str,
    region: &str,
) -> Result<String, ApiError> {
    let Request {
        method,
        uri,
        headers,
        body,
    } = *request;
    let refused = |e: &dyn std::fmt::Display| {
        invalid_signature(format!("The request cannot be checked: {e}"))
    };
    // Exactly the headers the client signed (several values of one name joined as the
    // canonical form wants), nothing the crate would leave out by default.
    let mut values: Vec<(&str, String)> = Vec::new();
    for name in &signed.signed_headers {
        if name == "x-amz-date" && !signed.presigned {
            continue; // the signer adds it from `time`
        }
        let joined = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
            .collect::<Vec<_>>()
            .join(",");
        values.push((name.as_str(), joined));
    }
    // A presigned query is signed without its signature parameters, which the signer adds.
    let path_and_query = match signed.presigned {
        false => uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string()),
        true => {
            let kept: Vec<String> = uri
                .query()
                .unwrap_or_default()
                .split('&')
                .filter(|pair| !pair.is_empty() && !pair.starts_with("X-Amz-"))
                .map(str::to_string)
                .collect();
            match kept.is_empty() {
                true => uri.path().to_string(),
                false => format!("{}?{}", uri.path(), kept.join("&")),
            }
        }
    };
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    if signed.presigned {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = signed.expires;
    }
    let identity =
        aws_credential_types::Credentials::new(key, secret, None, None, "tidemark").into();
    let params: SigningParams<'_> = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| refused(&e))?
        .into();
    let request = SignableRequest::new(
        method.as_str(),
        path_and_query,
        values.iter().map(|(n, v)| (*n, v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| refused(&e))?;
    let output = sign(request, &params).map_err(|e| refused(&e))?;
    Ok(output.signature().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_file_takes_lines_of_key_and_secret() {
        let keys = Credentials::parse("# keys\n\nAKID1 secret1\n  AKID2   secret2  \n").unwrap();
        assert_eq!(keys.len(), 2);
        assert!(!format!("{keys:?}").contains("secret"), "{keys:?}");
        assert_eq!(
            Credentials::parse("AKID1").unwrap_err(),
            CredentialsError::NotAKey { line: 1 }
        );
        assert_eq!(
            Credentials::parse("# keys\na b c").unwrap_err().to_string(),
            "line 2: expected ACCESS_KEY_ID SECRET, separated by a space"
        );
        assert_eq!(
            Credentials::parse("# nothing").unwrap_err(),
            CredentialsError::NoKeys
        );
    }

    /// Signs a request as a client would, in the headers or in the query, and returns what the
    /// node receives.
    fn signed_request(
        secret: &str,
        location: SignatureLocation,
        time: SystemTime,
        body: &[u8],
    ) -> (Uri, HeaderMap) {
        let identity =
            aws_credential_types::Credentials::new("AKID", secret, None, None, "test").into();
        let mut settings = SigningSettings::default();
        settings.signature_location = location;
        settings.expires_in = Some(Duration::from_secs(600));
        let params: SigningParams<'_> = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("dynamodb")
            .time(time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let headers = [
            ("host", "localhost:8000"),
            ("x-amz-target", "DynamoDB_20120810.ListTables"),
            ("content-type", "application/x-amz-json-1.0"),
        ];
        let request = SignableRequest::new(
            "POST",
            "http://localhost:8000/",
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut map = HeaderMap::new();
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let query: Vec<String> = instructions
            .params()
            .iter()
            .map(|(name, value)| {
                format!(
                    "{name}={}",
                    percent_encoding::utf8_percent_encode(
                        value,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                )
            })
            .collect();
        let uri = match query.is_empty() {
            true => "/".parse().unwrap(),
            false => format!("/?{}", query.join("&")).parse().unwrap(),
        };
        (uri, map)
    }

    #[test]
    fn signatures_in_headers_and_in_presigned_queries_check_out_with_the_right_secret() {
        let keys = Credentials::parse("AKID right").unwrap();
        let now = SystemTime::now();
        let body = b"{}";
        for location in [SignatureLocation::Headers, SignatureLocation::QueryParams] {
            let (uri, headers) = signed_request("right", location, now, body);
            keys.verify(&Method::POST, &uri, &headers, body, now)
                .unwrap_or_else(|e| panic!("{location:?}: {}", e.message));
            let tampered = keys
                .verify(&Method::POST, &uri, &headers, b"{\"Limit\":1}", now)
                .unwrap_err();
            assert!(tampered.type_name.ends_with("InvalidSignatureException"));
            let (uri, headers) = signed_request("wrong", location, now, body);
            let wrong = keys
                .verify(&Method::POST, &uri, &headers, body, now)
                .unwrap_err();
            assert!(
                wrong.type_name.ends_with("InvalidSignatureException"),
                "{location:?}"
            );
        }
        // A presigned request past its validity (600 s) is refused.
        let (uri, headers) = signed_request(
            "right",
            SignatureLocation::QueryParams,
            now - Duration::from_secs(700),
            body,
        );
        let expired = keys
            .verify(&Method::POST, &uri, &headers, body, now)
            .unwrap_err();
        assert_eq!(expired.message, "Request has expired");
    }

    #[test]
    fn dates_outside_fifteen_minutes_are_refused_saying_which_way() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |offset: i64| {
            stamp(SystemTime::UNIX_EPOCH + Duration::from_secs((1_700_000_000 + offset) as u64))
        };
        assert!(check_date(&at(-14 * 60), now, None).is_ok());
        assert!(check_date(&at(14 * 60), now, None).is_ok());
        let old = check_date(&at(-16 * 60), now, None).unwrap_err();
        assert!(
            old.message.starts_with("Signature expired:"),
            "{}",
            old.message
        );
        let future = check_date(&at(16 * 60), now, None).unwrap_err();
        assert!(
            future.message.starts_with("Signature not yet current:"),
            "{}",
            future.message
        );
        let bad = check_date("2017-01-01", now, None).unwrap_err();
        assert!(bad.type_name.ends_with("IncompleteSignatureException"));
        // A presigned request is good for its validity, then expires.
        assert!(check_date(&at(-3_000), now, Some(Duration::from_secs(3_600))).is_ok());
        assert!(check_date(&at(-3_700), now, Some(Duration::from_secs(3_600))).is_err());
    }
}
