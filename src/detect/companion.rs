//! Detections made on board by the drone's companion computer, which publishes them as
//! JSON beside each photo (`<file_url>.json`: `{"detections": [...]}` or a plain list, in
//! the `Detection` shape). gridpatrol files them as they are; the image is kept as
//! evidence but not analysed again.

use std::time::Duration;

use super::{DetectError, Detection, Detector};
use crate::capture::fetch::Fetcher;

pub struct CompanionDetector {
    fetcher: Fetcher,
}

impl CompanionDetector {
    pub fn new(timeout: Duration) -> Self {
        Self {
            fetcher: Fetcher::new(timeout),
        }
    }
}

impl Detector for CompanionDetector {
    fn name(&self) -> &str {
        "companion"
    }

    fn detect(&self, _jpeg: &[u8]) -> Result<Vec<Detection>, DetectError> {
        Err(DetectError::Companion(
            "companion detections come with a capture's file URL, not from pixels".into(),
        ))
    }

    fn detect_capture(&self, _jpeg: &[u8], file_url: &str) -> Result<Vec<Detection>, DetectError> {
        let url = format!("{}.json", file_url.trim());
        let bytes = self
            .fetcher
            .fetch(&url)
            .map_err(|e| DetectError::Companion(format!("fetching {url}: {e}")))?;
        super::parse_detections(&bytes).map_err(|e| DetectError::Companion(format!("{url}: {e}")))
    }
}
