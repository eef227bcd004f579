//! The web UI: the files `npm --prefix ui run build` writes to `ui/dist`, served from disk at
//! every path the API does not take (Grafana's `static_root_path`). A path that names no file
//! is one of the UI's own pages (`/flow/CZ/GSM/input/A?from=…`): `index.html` answers it and
//! the UI's router draws the page. Without a built UI every such path answers a page saying
//! how to build it (`cargo build` alone needs no Node.js).

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where the built UI is.
#[derive(Debug, Clone)]
pub struct WebUi {
    dir: PathBuf,
}

/// The UI's files of the source tree this binary was built from (`--ui-dir` overrides it).
pub const BUILT_IN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/dist");

/// What every page of the UI may load: only this server's own scripts, styles and images
/// (nothing from a CDN), no framing.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                      frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

impl WebUi {
    /// The UI built into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> WebUi {
        WebUi { dir: dir.into() }
    }

    /// The directory served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `dir` holds a built UI.
    pub fn is_built(&self) -> bool {
        self.dir.join("index.html").is_file()
    }

    /// The answer to `GET path`: the file it names, else `index.html` (a page of the UI), else
    /// the page saying the UI is not built.
    pub async fn get(&self, path: &str) -> Response {
        if let Some(file) = self.file(path)
            && let Ok(bytes) = tokio::fs::read(&file).await
        {
            return file_response(&file, bytes);
        }
        let index = self.dir.join("index.html");
        match tokio::fs::read(&index).await {
            Ok(bytes) => file_response(&index, bytes),
            Err(_) => self.not_built(),
        }
    }

    /// The file `path` names inside the UI's directory; `None` for a path that leaves it or
    /// names a directory.
    fn file(&self, path: &str) -> Option<PathBuf> {
        let relative = Path::new(path.trim_start_matches('/'));
        if relative.as_os_str().is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let file = self.dir.join(relative);
        file.is_file().then_some(file)
    }

    fn not_built(&self) -> Response {
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>flowwatch: UI not built</title></head><body>\
             <h1>The web UI is not built</h1>\
             <p>This flowwatch serves its API (<a href=\"/api/v1/health\">/api/v1/health</a>) \
             but found no built web UI in <code>{}</code>.</p>\
             <p>Build it from the source tree with <code>npm --prefix ui ci &amp;&amp; npm \
             --prefix ui run build</code>, or point <code>--ui-dir</code> at a built \
             <code>ui/dist</code>.</p></body></html>",
            html_escape(&self.dir.display().to_string())
        );
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, page).into_response();
        set(&mut r, header::CONTENT_TYPE, "text/html; charset=utf-8");
        set(&mut r, header::CACHE_CONTROL, "no-store");
        r
    }
}

fn set(r: &mut Response, name: header::HeaderName, value: &'static str) {
    r.headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

/// A file with its type; the build's hashed assets are cached for good, everything else
/// (`index.html`) revalidated on every load so a new build is seen at once.
fn file_response(file: &Path, bytes: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(bytes));
    set(&mut r, header::CONTENT_TYPE, content_type(file));
    let hashed = file
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "assets");
    set(
        &mut r,
        header::CACHE_CONTROL,
        if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        },
    );
    set(&mut r, header::CONTENT_SECURITY_POLICY, POLICY);
    set(&mut r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut r, header::REFERRER_POLICY, "same-origin");
    r
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn built() -> (tempfile::TempDir, WebUi) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>index</p>").unwrap();
        std::fs::write(dir.path().join("assets/app-1a2b.js"), "let x").unwrap();
        let ui = WebUi::new(dir.path());
        (dir, ui)
    }

    #[tokio::test]
    async fn files_are_served_with_their_type_and_pages_get_the_index() {
        let (_dir, ui) = built();
        assert!(ui.is_built());
        let r = ui.get("/assets/app-1a2b.js").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(
            r.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert_eq!(body(r).await, "let x");
        for page in ["/", "/flow/CZ/GSM/input/A%3AB", "/dashboard?x=1", "/assets"] {
            let r = ui.get(page).await;
            assert_eq!(r.status(), StatusCode::OK, "{page}");
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
            assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
            assert_eq!(body(r).await, "<p>index</p>", "{page}");
        }
    }

    #[tokio::test]
    async fn no_path_leaves_the_directory() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        let (_dir, ui) = built();
        let escape = format!("/../{}/secret", outside.path().display());
        for path in [escape.as_str(), "/assets/../../secret", "//etc/passwd"] {
            assert_eq!(ui.file(path), None, "{path}");
            assert_eq!(body(ui.get(path).await).await, "<p>index</p>", "{path}");
        }
    }

    #[tokio::test]
    async fn without_a_build_a_page_says_how_to_build_it() {
        let dir = tempfile::tempdir().unwrap();
        let ui = WebUi::new(dir.path().join("dist"));
        assert!(!ui.is_built());
        let r = ui.get("/").await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let page = body(r).await;
        assert!(page.contains("npm --prefix ui run build"), "{page}");
        assert!(page.contains("--ui-dir"), "{page}");
    }
}
