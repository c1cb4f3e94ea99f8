//! Building the connection pool: timeouts, TLS, and replacing broken connections.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use native_tls::{Certificate, TlsConnector};
use postgres_native_tls::MakeTlsConnector;
use secrecy::ExposeSecret;
use tokio_postgres::config::SslMode;

use super::{StoreError, StoreSettings};

pub(super) fn pool(settings: &StoreSettings) -> Result<Pool, StoreError> {
    let mut config: tokio_postgres::Config = settings
        .url
        .expose_secret()
        .parse()
        .map_err(|err| StoreError::Config(format!("DATABASE_URL cannot be parsed: {err}")))?;

    // A dead peer must not hang a request: bound connecting, and have the server cancel any
    // statement that runs too long, so the API answers 503 within seconds instead.
    config.connect_timeout(settings.timeout);
    config.keepalives_idle(Duration::from_secs(30));
    config.tcp_user_timeout(settings.timeout * 2);
    let statement_timeout = format!("-c statement_timeout={}", settings.timeout.as_millis());
    let options = match config.get_options() {
        Some(given) => format!("{given} {statement_timeout}"),
        None => statement_timeout,
    };
    config.options(options);
    if config.get_application_name().is_none() {
        config.application_name("qubit");
    }

    // Verified recycling runs a trivial query before handing a connection out again, so a
    // connection that died (a restarted server, a Lambda frozen for an hour) is replaced
    // rather than returned to a caller as an error.
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Verified,
    };
    let manager = match config.get_ssl_mode() {
        SslMode::Disable => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        _ => {
            let tls = tls_connector(settings.ca_file.as_deref())?;
            Manager::from_config(config, tls, manager_config)
        }
    };

    Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.timeout))
        .create_timeout(Some(settings.timeout))
        .recycle_timeout(Some(settings.timeout))
        .build()
        .map_err(|err| StoreError::Config(err.to_string()))
}

/// A TLS connector that verifies the server's certificate and host name against the system
/// roots plus every certificate in `ca_file`.
fn tls_connector(ca_file: Option<&str>) -> Result<MakeTlsConnector, StoreError> {
    let mut builder = TlsConnector::builder();

    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|err| {
            StoreError::Config(format!("DATABASE_CA_FILE {path} cannot be read: {err}"))
        })?;
        // A bundle such as Amazon RDS's holds one certificate per region: trust each.
        let roots = Certificate::stack_from_pem(&pem).map_err(|err| {
            StoreError::Config(format!(
                "DATABASE_CA_FILE {path} is not a PEM bundle: {err}"
            ))
        })?;
        if roots.is_empty() {
            return Err(StoreError::Config(format!(
                "DATABASE_CA_FILE {path} holds no certificate"
            )));
        }
        for root in roots {
            builder.add_root_certificate(root);
        }
    }

    let connector = builder
        .build()
        .map_err(|err| StoreError::Config(format!("TLS cannot be set up: {err}")))?;
    Ok(MakeTlsConnector::new(connector))
}
