//! CORS, so browser clients and tools can call the node: tower-http's `CorsLayer` (any origin,
//! the preflight's requested method and headers allowed back), adjusted to DynamoDB's answers
//! as the acceptance suite pins them: a request without `Origin` gets no CORS header at all,
//! and a preflight also names the exposed headers.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

/// The response headers a browser script may read.
const EXPOSED: &str = "x-amzn-requestid,x-amz-crc32";

/// How long a browser may keep a preflight's answer (browsers cap it at two hours).
const MAX_AGE: Duration = Duration::from_secs(7200);

/// The CORS layer.
pub fn layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(
            EXPOSED
                .split(',')
                .map(HeaderName::from_static)
                .collect::<Vec<_>>(),
        )
        .max_age(MAX_AGE)
}

/// Around [`layer`]: what DynamoDB does differently.
pub async fn as_dynamodb(request: Request, next: Next) -> Response {
    let from_a_page = request.headers().contains_key(header::ORIGIN);
    let preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !from_a_page {
        let cors: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in cors {
            headers.remove(name);
        }
    } else if preflight {
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    }
    response
}
