//! Builds an `object_store` client for one store URL (`s3://bucket`, `gs://bucket`,
//! `az://container`, `https://host`) from a dataset's `[dataset.storage]` table, with the
//! standard environment, profile files and instance metadata as the defaults. Timeouts and the
//! retry policy of the HTTP client are set here too.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};

use super::profile;
use super::RemoteError;
use crate::config::StorageSection;

/// Retries of a failing request when the config says nothing.
pub const DEFAULT_RETRIES: usize = 4;
/// Requests in flight per store when the config says nothing.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// An `object_store` client for `store` (`scheme://bucket`).
///
/// # Errors
/// [`RemoteError::Store`] when the client cannot be built (unknown option, bad endpoint);
/// the message never contains option values.
pub fn open_store(
    store: &str,
    storage: &StorageSection,
) -> Result<Arc<dyn ObjectStore>, RemoteError> {
    let failed = |reason: String| RemoteError::Store {
        store: store.to_owned(),
        reason,
    };
    // Option values may be credentials: no message may ever show them.
    storage
        .options
        .values()
        .for_each(|value| super::register_secret(value));
    let scheme = store.split_once("://").map_or("", |(s, _)| s);
    let allow_http = scheme == "http"
        || storage
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
    let client = client_options(allow_http);
    let retry = retry_config(storage.retries.unwrap_or(DEFAULT_RETRIES));
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match scheme {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(store)
                .with_client_options(client)
                .with_retry(retry);
            let profile = profile::aws_profile(storage.profile.as_deref());
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() || storage.profile.is_some() {
                if let Some(creds) = &profile.credentials {
                    super::register_secret(&creds.secret_access_key);
                    creds
                        .session_token
                        .iter()
                        .for_each(|token| super::register_secret(token));
                    builder = builder
                        .with_access_key_id(&creds.access_key_id)
                        .with_secret_access_key(&creds.secret_access_key);
                    if let Some(token) = &creds.session_token {
                        builder = builder.with_token(token);
                    }
                }
            }
            let region = storage
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .or(profile.region)
                .unwrap_or_else(|| "us-east-1".to_owned());
            builder = builder.with_region(region);
            if let Some(endpoint) = &storage.endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            if storage.anonymous {
                builder = builder.with_skip_signature(true);
            }
            for (key, value) in &storage.options {
                let key = AmazonS3ConfigKey::from_str(key)
                    .map_err(|_| failed(format!("unknown S3 option {key:?}")))?;
                builder = builder.with_config(key, value);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        "gs" | "gcs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(store)
                .with_client_options(client)
                .with_retry(retry)
                .with_skip_signature(storage.anonymous);
            for (key, value) in &storage.options {
                let key = GoogleConfigKey::from_str(key)
                    .map_err(|_| failed(format!("unknown GCS option {key:?}")))?;
                builder = builder.with_config(key, value);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(store)
                .with_client_options(client)
                .with_retry(retry)
                .with_skip_signature(storage.anonymous);
            if let Some(endpoint) = &storage.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            for (key, value) in &storage.options {
                let key = AzureConfigKey::from_str(key)
                    .map_err(|_| failed(format!("unknown Azure option {key:?}")))?;
                builder = builder.with_config(key, value);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        "http" | "https" => {
            let mut builder = HttpBuilder::new()
                .with_url(store)
                .with_client_options(client)
                .with_retry(retry);
            for (key, value) in &storage.options {
                let key = ClientConfigKey::from_str(key)
                    .map_err(|_| failed(format!("unknown HTTP client option {key:?}")))?;
                builder = builder.with_config(key, value);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        other => return Err(failed(format!("unsupported scheme {other:?}"))),
    };
    built.map_err(|e| failed(super::redacted(&e)))
}

/// HTTP client settings: plain HTTP only when asked for, bounded connect and request times.
fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30))
        .with_pool_idle_timeout(Duration::from_secs(30))
}

/// Exponential backoff from 50 ms, at most 4 s between attempts and 60 s in all.
fn retry_config(retries: usize) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(4),
            base: 2.0,
        },
        max_retries: retries,
        retry_timeout: Duration::from_secs(60),
    }
}
