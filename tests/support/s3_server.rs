//! An S3-protocol server on loopback for tests: `s3s-fs` serving a directory (each directory
//! under it is a bucket) in this process, with signed requests, until dropped.

use std::path::Path;

pub(crate) const S3_BUCKET: &str = "fixtures";
/// The access key the server accepts.
pub(crate) const S3_ACCESS_KEY: &str = "AKIATESTFIXTURES";
/// Its secret.
pub(crate) const S3_SECRET_KEY: &str = "test-secret-for-the-loopback-server";

/// `s3s-fs` serving `root` (each directory under it is a bucket) on a loopback port, until
/// dropped.
pub(crate) struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3Server {
    /// Starts serving `root`.
    pub(crate) fn start(root: &Path) -> S3Server {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder as ConnBuilder;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let fs = s3s_fs::FileSystem::new(root).expect("an s3s-fs file system");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
        ));
        let service = builder.build();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a loopback port");
        let endpoint = format!(
            "http://{}",
            listener.local_addr().expect("the listener's address")
        );
        runtime.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server {
            endpoint,
            runtime: Some(runtime),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
