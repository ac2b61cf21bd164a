//! Fetching an image from where CAMERA_IMAGE_CAPTURED says it is: `http://` (the
//! camera's or the companion's web server), `file://` or a plain path (a shared disk).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {problem}")]
    Http { url: String, problem: String },
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the capture has no file URL")]
    NoUrl,
    #[error("{0}: unsupported URL scheme (http://, file:// or a path)")]
    Scheme(String),
}

/// Fetches images; one agent (keeping connections alive) per fetcher.
pub struct Fetcher {
    agent: ureq::Agent,
    /// Largest image accepted, bytes.
    pub max_bytes: u64,
}

/// An HTTP client that gives up on a whole request after `timeout` (connections kept
/// alive); the image fetcher, the inference service and the webhook all use one.
pub(crate) fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into()
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Self {
        Self {
            agent: http_agent(timeout),
            max_bytes: 64 << 20,
        }
    }

    /// The image's bytes. Blocking: run it on a blocking thread.
    pub fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(FetchError::NoUrl);
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            let fail = |problem: String| FetchError::Http {
                url: url.to_string(),
                problem,
            };
            let mut resp = self
                .agent
                .get(url)
                .call()
                .map_err(|e| fail(e.to_string()))?;
            return resp
                .body_mut()
                .with_config()
                .limit(self.max_bytes)
                .read_to_vec()
                .map_err(|e| fail(e.to_string()));
        }
        let path = match url.strip_prefix("file://") {
            Some(p) => p,
            None if url.contains("://") => return Err(FetchError::Scheme(url.to_string())),
            None => url,
        };
        std::fs::read(path).map_err(|source| FetchError::File {
            path: path.to_string(),
            source,
        })
    }
}
