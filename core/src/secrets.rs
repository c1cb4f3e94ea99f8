//! Secrets kept in SSM Parameter Store, read once at start-up.
//!
//! On AWS the database URL and the webhook auth key are SecureString parameters; the
//! functions' environment names the parameters, never the secrets.

use aws_sdk_ssm::error::DisplayErrorContext;
use secrecy::SecretString;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
#[error("cannot read SSM parameter {name} (named by {variable}): {reason}")]
pub struct SecretError {
    pub variable: &'static str,
    pub name: String,
    pub reason: String,
}

/// Fills `config.database_url` and `config.webhook_auth_key` from the SSM parameters their
/// `*_PARAMETER` variables name. Makes no AWS call when neither is set.
pub async fn resolve(config: &mut Config) -> Result<(), SecretError> {
    if config.database_url_parameter.is_none() && config.webhook_auth_key_parameter.is_none() {
        return Ok(());
    }
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ssm = aws_sdk_ssm::Client::new(&aws);

    if let Some(name) = &config.database_url_parameter {
        let value = read(&ssm, "DATABASE_URL_PARAMETER", name).await?;
        config.database_url = Some(value);
    }
    if let Some(name) = &config.webhook_auth_key_parameter {
        let value = read(&ssm, "WEBHOOK_AUTH_KEY_PARAMETER", name).await?;
        config.webhook_auth_key = Some(value);
    }
    Ok(())
}

async fn read(
    ssm: &aws_sdk_ssm::Client,
    variable: &'static str,
    name: &str,
) -> Result<SecretString, SecretError> {
    let error = |reason: String| SecretError {
        variable,
        name: name.to_owned(),
        reason,
    };
    let output = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|err| error(DisplayErrorContext(&err).to_string()))?;

    output
        .parameter
        .and_then(|parameter| parameter.value)
        .map(SecretString::from)
        .ok_or_else(|| error("the parameter has no value".to_owned()))
}
