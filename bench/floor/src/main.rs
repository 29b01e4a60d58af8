//! Hello world on `lambda_http`: what any Rust HTTP Lambda costs before it does anything.
//! `bench/run.sh` builds it with the release profile beside the five functions and measures
//! it the same way (zipped size, start to first answer, peak memory).

use lambda_http::{Body, Error, Request, Response, run, service_fn};

async fn hello(_: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Body::from("hello"))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(hello)).await
}
