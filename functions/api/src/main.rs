//! `api`: Qubit's HTTP API as a Lambda function behind API Gateway (REST or HTTP API) or a
//! function URL. It serves the core's router unchanged.
//!
//! The pool and the AWS clients are built once per cold start and reused by warm invocations;
//! the pool checks each connection before reuse, so one that died while the function was
//! frozen is replaced rather than returned as an error.

use lambda_http::request::RequestContext;
use lambda_http::{Error, Request, RequestExt};
use qubit_core::app::App;
use qubit_core::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(LogFormat::Json);

    let app = App::from_lambda_env().await.inspect_err(|err| {
        tracing::error!(error.message = %err, "cold start failed");
    })?;
    let router = qubit_core::http::router(app.state);

    let service = tower::ServiceBuilder::new()
        .map_request(without_stage)
        .service(router);
    lambda_http::run(service).await
}

/// Removes the API Gateway stage from the path, so `/prod/api/v1/messages` and
/// `/api/v1/messages` reach the same handler.
///
/// `lambda_http` puts the stage in front of the path of API Gateway events (unless
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set), and a custom domain may or may not have
/// put it there already; the router knows nothing of stages.
fn without_stage(mut request: Request) -> Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|stage| stage != "$default" && !stage.is_empty()) else {
        return request;
    };

    let prefix = format!("/{stage}");
    let path = request.uri().path();
    let rest = match path.strip_prefix(&prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => return request,
    };
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };

    let mut parts = request.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(parsed) => parts.path_and_query = Some(parsed),
        Err(_) => return request,
    }
    if let Ok(uri) = lambda_http::http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

#[cfg(test)]
mod tests {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;

    use super::*;

    fn request(path: &str, stage: Option<&str>) -> Request {
        let mut context = ApiGatewayProxyRequestContext::default();
        context.stage = stage.map(str::to_owned);
        let mut request = Request::default();
        *request.uri_mut() = path.parse().expect("a valid URI");
        request.with_request_context(RequestContext::ApiGatewayV1(context))
    }

    #[test]
    fn the_stage_is_removed_from_the_front_of_the_path_with_the_query_kept() {
        let stripped = without_stage(request("/prod/api/v1/messages?status=all", Some("prod")));
        assert_eq!(stripped.uri().path(), "/api/v1/messages");
        assert_eq!(stripped.uri().query(), Some("status=all"));

        let stripped = without_stage(request("/prod", Some("prod")));
        assert_eq!(stripped.uri().path(), "/");
    }

    #[test]
    fn a_path_without_the_stage_is_left_alone() {
        for (path, stage) in [
            ("/api/v1/messages", Some("prod")),
            ("/production/x", Some("prod")),
            ("/api/v1/messages", Some("$default")),
            ("/api/v1/messages", None),
        ] {
            assert_eq!(without_stage(request(path, stage)).uri().path(), path);
        }
    }
}
