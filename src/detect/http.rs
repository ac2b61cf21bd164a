//! An external inference service: the JPEG is POSTed as `image/jpeg`; the service answers
//! JSON, either a list of detections or `{"detections": [...]}`, each
//! `{"category": "garbage", "confidence": 0.9, "bbox": [x0, y0, x1, y1]}`.

use std::time::Duration;

use super::{DetectError, Detection, Detector};

pub struct HttpDetector {
    url: String,
    agent: ureq::Agent,
}

impl HttpDetector {
    /// A detector posting to `url`, giving up on a request after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self {
            url: url.to_string(),
            agent: crate::capture::fetch::http_agent(timeout),
        }
    }

    fn fail(&self, problem: impl ToString) -> DetectError {
        DetectError::Service {
            url: self.url.clone(),
            problem: problem.to_string(),
        }
    }
}

impl Detector for HttpDetector {
    fn name(&self) -> &str {
        "http"
    }

    fn detect(&self, jpeg: &[u8]) -> Result<Vec<Detection>, DetectError> {
        let mut resp = self
            .agent
            .post(&self.url)
            .content_type("image/jpeg")
            .send(jpeg)
            .map_err(|e| self.fail(e))?;
        let body = resp.body_mut().read_to_string().map_err(|e| self.fail(e))?;
        super::parse_detections(body.as_bytes()).map_err(|e| self.fail(format!("answer: {e}")))
    }
}
