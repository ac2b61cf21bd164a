//! The image store: photos kept by the SHA-256 of their bytes (`ab/abcdef….jpg`) behind
//! the `object_store` interface, in a local directory by default (each write fsynced, then
//! renamed into place) or in an S3-compatible bucket shared by several controllers.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

/// Where the images are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSpec {
    /// A local (or shared, NFS) directory.
    Dir(PathBuf),
    /// `s3://BUCKET/PREFIX`: an S3-compatible bucket; the endpoint, region and credentials
    /// come from the environment as AWS tools read them (`AWS_ENDPOINT`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`).
    S3 { bucket: String, prefix: String },
}

impl FromStr for ImageSpec {
    type Err = String;

    /// `s3://BUCKET[/PREFIX]`, `file:///DIR`, or a directory path.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{s}: no bucket (s3://BUCKET/PREFIX)"));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some((scheme, _)) = s.split_once("://") {
            if scheme != "file" {
                return Err(format!(
                    "{s}: images go to a directory, file:///DIR or s3://BUCKET/PREFIX, not {scheme}://"
                ));
            }
        }
        let dir = s.strip_prefix("file://").unwrap_or(s);
        if dir.is_empty() {
            return Err("an empty image directory".into());
        }
        Ok(Self::Dir(PathBuf::from(dir)))
    }
}

impl fmt::Display for ImageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "{}", d.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Images stored by the SHA-256 of their bytes. Storing the same image twice is a no-op,
/// and a stored image never changes, so controllers sharing the store cannot tear one.
/// Its calls block (like the event store's): they run on a small runtime of the store's
/// own, so they work from any thread.
#[derive(Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    spec: ImageSpec,
    /// Under the bucket, for S3 (empty for a directory: the store is rooted there).
    prefix: String,
    /// Always Some but in `drop`.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Without waiting: the store may be dropped on another runtime's thread.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageStore({})", self.inner.spec)
    }
}

fn other(e: impl fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn from_store(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { path, .. } => {
            io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such image"))
        }
        e => other(e),
    }
}

impl ImageStore {
    /// The store in local directory `dir` (created if need be).
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_spec(&ImageSpec::Dir(dir.to_path_buf()))
    }

    /// The store `spec` says.
    pub fn open_spec(spec: &ImageSpec) -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gridpatrol-images")
            .enable_all()
            .build()?;
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match spec {
            ImageSpec::Dir(dir) => {
                std::fs::create_dir_all(dir)?;
                // Each image on disk before its hash is recorded: a power cut must not
                // leave the event store pointing at an empty file.
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(other)?
                    .with_fsync(true);
                (Arc::new(fs), String::new())
            }
            ImageSpec::S3 { bucket, prefix } => (s3(bucket)?, prefix.clone()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                spec: spec.clone(),
                prefix,
                rt: Some(rt),
            }),
        })
    }

    /// Where the images are, as a person would name it.
    pub fn spec(&self) -> &ImageSpec {
        &self.inner.spec
    }

    /// The object an image with this hash is kept as.
    fn location(&self, sha: &str) -> ObjectPath {
        let name = format!("{}/{sha}.jpg", sha.get(..2).unwrap_or("00"));
        if self.inner.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.inner.prefix))
        }
    }

    /// Runs `f` on the store's runtime and waits for it on this thread.
    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = io::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        let stopped = || other("the image store's runtime has stopped");
        let rt = self.inner.rt.as_ref().ok_or_else(stopped)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().map_err(|_| stopped())?
    }

    /// Stores `bytes`, returning their hex SHA-256. A local write goes to a temporary file
    /// that is fsynced and renamed, so a crash never leaves half an image under its hash;
    /// an S3 object appears whole or not at all.
    pub fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let at = self.location(&sha);
        let store = self.inner.store.clone();
        let payload = PutPayload::from(bytes.to_vec());
        self.run(async move {
            match store.head(&at).await {
                Ok(_) => return Ok(()),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(from_store(e)),
            }
            store
                .put(&at, payload)
                .await
                .map(|_| ())
                .map_err(from_store)
        })?;
        Ok(sha)
    }

    /// The image with this hash.
    pub fn get(&self, sha: &str) -> io::Result<Vec<u8>> {
        let at = self.location(sha);
        let store = self.inner.store.clone();
        self.run(async move {
            let got = store.get(&at).await.map_err(from_store)?;
            Ok(got.bytes().await.map_err(from_store)?.to_vec())
        })
    }
}

/// An S3-compatible bucket, configured from the environment.
#[cfg(feature = "s3")]
fn s3(bucket: &str) -> io::Result<Arc<dyn ObjectStore>> {
    // reqwest's rustls takes its cryptography from the process default: ring, as the rest
    // of the program's TLS (another part may have installed it already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| other(format!("s3://{bucket}: {e}")))?;
    Ok(Arc::new(s3))
}

#[cfg(not(feature = "s3"))]
fn s3(bucket: &str) -> io::Result<Arc<dyn ObjectStore>> {
    Err(other(format!(
        "s3://{bucket}: this gridpatrol was built without the `s3` feature"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let a = s.put(b"one image").unwrap();
        let b = s.put(b"one image").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(s.get(&a).unwrap(), b"one image");
        assert_ne!(s.put(b"another").unwrap(), a);
        // Laid out as ab/abcdef….jpg under the directory.
        let file = dir.path().join(&a[..2]).join(format!("{a}.jpg"));
        assert_eq!(std::fs::read(file).unwrap(), b"one image");
        let missing = s.get(&"0".repeat(64)).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn image_specs_parse_and_bad_ones_are_named() {
        assert_eq!(
            "s3://photos/district-7/".parse::<ImageSpec>().unwrap(),
            ImageSpec::S3 {
                bucket: "photos".into(),
                prefix: "district-7".into()
            }
        );
        assert_eq!(
            "file:///srv/images".parse::<ImageSpec>().unwrap(),
            ImageSpec::Dir("/srv/images".into())
        );
        assert_eq!(
            "data/images".parse::<ImageSpec>().unwrap(),
            ImageSpec::Dir("data/images".into())
        );
        let e = "gs://photos".parse::<ImageSpec>().unwrap_err();
        assert!(e.contains("not gs://"), "{e}");
        assert!("s3:///x"
            .parse::<ImageSpec>()
            .unwrap_err()
            .contains("no bucket"));
    }
}
