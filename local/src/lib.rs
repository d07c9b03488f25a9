//! Local mode: every function's `handle` mounted on one port. Requests are
//! turned into the API Gateway v2 requests a Lambda would get (body,
//! headers, `requestContext.http.sourceIp`), so the same handler code runs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::RequestExt;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::request::RequestContext;
use nambari_core::app::Needs;
use nambari_core::{App, Error};
use nambari_http::{Response, error_response};
use tokio::net::TcpListener;

/// Local mode's default for a setting the environment does not set:
/// sandbox on, codes printed on the terminal, and invites on with a
/// development claim link on local mode's own port (local mode turns every
/// feature on that needs nothing outside the machine).
pub fn local_default(setting: &str, port: u16) -> Option<String> {
    match setting {
        "SANDBOX" => Some("true".into()),
        "SENDERS" => Some("console".into()),
        "INVITE_URL_TEMPLATE" => Some(format!("http://127.0.0.1:{port}/claim/{{invite_id}}")),
        _ => None,
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send>>;
type Handler = fn(Arc<App>, lambda_http::Request) -> HandlerFuture;

/// One mounted function.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: &'static str,
    /// What the function declares it uses: local mode hands it an App with
    /// only that, as its deployment does.
    pub needs: Needs,
    handler: Handler,
}

macro_rules! route {
    ($krate:ident, $name:literal) => {
        Route {
            method: $krate::METHOD,
            path: $krate::PATH,
            function: $name,
            needs: $krate::NEEDS,
            handler: |app, req| Box::pin($krate::handle(app, req)),
        }
    };
}

/// Every function, as deployed.
pub fn routes() -> Vec<Route> {
    vec![
        route!(auth_check, "auth-check"),
        route!(auth_passwordless_channels, "auth-passwordless-channels"),
        route!(auth_passwordless_start, "auth-passwordless-start"),
        route!(auth_verify_otp, "auth-verify-otp"),
        route!(auth_resend_otp, "auth-resend-otp"),
        route!(auth_onboarding_primary, "auth-onboarding-primary"),
        route!(auth_token_refresh, "auth-token-refresh"),
        route!(auth_token_revoke, "auth-token-revoke"),
        route!(jwks, "jwks"),
        route!(auth_login_password, "auth-login-password"),
        route!(account_device_verify, "account-device-verify"),
        route!(auth_password_forgot_initiate, "auth-password-forgot-initiate"),
        route!(auth_password_forgot_verify_otp, "auth-password-forgot-verify-otp"),
        route!(auth_password_forgot_reset, "auth-password-forgot-reset"),
        route!(auth_login_oauth, "auth-login-oauth"),
        route!(account_oauth_link, "account-oauth-link"),
        route!(account_oauth_unlink, "account-oauth-unlink"),
        route!(account_oauth_nonce, "account-oauth-nonce"),
        route!(account_password, "account-password"),
        route!(account_pin, "account-pin"),
        route!(account_pin_recovery_start, "account-pin-recovery-start"),
        route!(account_pin_recovery_verify, "account-pin-recovery-verify"),
        route!(auth_step_up, "auth-step-up"),
        route!(account_me, "account-me"),
        route!(account_username, "account-username"),
        route!(account_interests, "account-interests"),
        route!(account_bio, "account-bio"),
        route!(account_profile_pic, "account-profile-pic"),
        route!(account_email_start, "account-email-start"),
        route!(account_email_verify, "account-email-verify"),
        route!(account_sessions_list, "account-sessions-list"),
        route!(account_session_revoke, "account-session-revoke"),
        route!(auth_logout, "auth-logout"),
        route!(auth_otp_trigger, "auth-otp-trigger"),
        route!(auth_otp_verify, "auth-otp-verify"),
        route!(otp_send, "otp-send"),
        route!(otp_verify, "otp-verify"),
        route!(otp_resend, "otp-resend"),
        route!(otp_sessions, "otp-sessions"),
        route!(users_get, "users-get"),
        route!(users_find, "users-find"),
        route!(invites_create, "invites-create"),
        route!(step_up_consume, "step-up-consume"),
    ]
}

/// Serves `app` on `listener` until the task is dropped, each function
/// with `app` restricted to its needs (what it did not declare fails as it
/// would deployed). With `log`, one line per request: method, route,
/// status, milliseconds (never a body or a query string).
pub async fn serve(app: Arc<App>, listener: TcpListener, log: bool) {
    let routes: Arc<Vec<Mounted>> = Arc::new(
        routes()
            .into_iter()
            .map(|route| Mounted {
                app: Arc::new(app.only(route.needs)),
                route,
            })
            .collect(),
    );
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (app, routes) = (app.clone(), routes.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let (app, routes) = (app.clone(), routes.clone());
                async move { Ok::<_, std::convert::Infallible>(dispatch(app, &routes, req, peer, log).await) }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A route and the App its function runs on.
struct Mounted {
    route: Route,
    app: Arc<App>,
}

async fn dispatch(
    app: Arc<App>,
    routes: &[Mounted],
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    log: bool,
) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // The API description (local mode only: a deployed stage does not serve it).
    if path == "/api/v1/openapi.yaml" && method == http::Method::GET {
        let mut res = hyper::Response::new(Full::new(Bytes::from_static(
            include_str!("../../openapi.yaml").as_bytes(),
        )));
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/yaml"),
        );
        return res;
    }
    let matching: Vec<(&Mounted, Vec<(String, String)>)> = routes
        .iter()
        .filter_map(|m| match_path(m.route.path, &path).map(|params| (m, params)))
        .collect();
    let found = matching.iter().find(|(m, _)| m.route.method == method.as_str());
    let res = match (found, matching.is_empty()) {
        (None, true) => error_response(&app, &Error::NotFound("No such route")),
        (None, false) => {
            let allow: Vec<&str> = matching.iter().map(|(m, _)| m.route.method).collect();
            let mut res = error_response(&app, &Error::MethodNotAllowed);
            if let Ok(v) = http::HeaderValue::from_str(&allow.join(", ")) {
                res.headers_mut().insert(http::header::ALLOW, v);
            }
            res
        }
        (Some((m, params)), _) => match to_lambda(req, peer, params.clone()).await {
            Ok(lreq) => (m.route.handler)(m.app.clone(), lreq).await,
            Err(e) => error_response(&app, &e),
        },
    };
    let route = found.map(|(m, _)| &m.route).or(matching.first().map(|(m, _)| &m.route));
    if log {
        eprintln!(
            "{} {} {} {:.1}ms",
            method,
            route.map(|r| r.path).unwrap_or("(unknown)"),
            res.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    from_lambda(res)
}

/// The path parameters of `path` when it matches the route template
/// `template` (`/api/v1/users/{id}`: a `{name}` segment matches one
/// non-empty segment), as API Gateway would give them.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    for (ts, ps) in t.iter().zip(&p) {
        match ts.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            Some(name) if !ps.is_empty() => params.push((name.to_owned(), percent_decode(ps))),
            Some(_) => return None,
            None if ts == ps => {}
            None => return None,
        }
    }
    Some(params)
}

/// `%XX` escapes decoded; an invalid escape is kept as it is, invalid
/// UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string as API Gateway's `queryStringParameters` (repeated
/// names keep every value).
fn query_params(query: Option<&str>) -> lambda_http::aws_lambda_events::query_map::QueryMap {
    let mut map: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (
            percent_decode(&k.replace('+', " ")),
            percent_decode(&v.replace('+', " ")),
        );
        map.entry(k).or_default().push(v);
    }
    map.into()
}

/// The API Gateway v2 request a Lambda would receive.
async fn to_lambda(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    path_params: Vec<(String, String)>,
) -> Result<lambda_http::Request, Error> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, nambari_http::body::MAX_BODY)
        .collect()
        .await
        .map_err(|_| Error::PayloadTooLarge)?
        .to_bytes();
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(s) if s.is_empty() => lambda_http::Body::Empty,
        Ok(s) => lambda_http::Body::Text(s),
        Err(e) => lambda_http::Body::Binary(e.into_bytes()),
    };
    let mut lreq = http::Request::from_parts(parts, body);
    let mut http_desc = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_desc.method = lreq.method().clone();
    http_desc.path = Some(lreq.uri().path().to_owned());
    http_desc.source_ip = Some(peer.ip().to_string());
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.http = http_desc;
    lreq.extensions_mut().insert(RequestContext::ApiGatewayV2(ctx));
    let query = query_params(lreq.uri().query());
    let path_params: std::collections::HashMap<String, String> = path_params.into_iter().collect();
    Ok(lreq
        .with_query_string_parameters(query)
        .with_path_parameters(path_params))
}

fn from_lambda(res: Response) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = res.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}
