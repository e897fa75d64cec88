//! The HTTP ceiling of this machine, for benchmarks: the least a DynamoDB-compatible server
//! must do per request (accept a POST, parse its JSON body, answer a fixed ~1 KB item with the
//! protocol's headers), and nothing else. Tidemark's figures are reported as ratios to it.
//!
//! Usage: `http-ceiling PORT`

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;

fn fixed_item() -> Vec<u8> {
    let payload = "x".repeat(960);
    serde_json::to_vec(&serde_json::json!({
        "Item": {
            "pk": {"S": "p0000001"},
            "sk": {"S": "s01"},
            "payload": {"S": payload},
            "n": {"N": "42"}
        }
    }))
    .unwrap_or_default()
}

async fn answer(item: Bytes, body: Bytes) -> Response {
    let status = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let crc = crc32fast::hash(&item);
    let mut response = Response::new(Body::from(item));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    headers.insert("x-amz-crc32", HeaderValue::from(crc));
    headers.insert("x-amzn-requestid", HeaderValue::from_static("CEILING"));
    response
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8001);
    let item = Bytes::from(fixed_item());
    let app = Router::new().route("/", post(move |body: Bytes| answer(item.clone(), body)));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}
