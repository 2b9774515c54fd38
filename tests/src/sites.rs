//! A local website with pages of known status and body, served on threads.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
};

/// An HTTP/1.1 server on 127.0.0.1 with:
/// - `/ok`: 200 with a body that contains `version=4.2`, and `/ok/<anything>` the same (many sites
///   on one server),
/// - `/missing`: 404,
/// - `/redirect`: 302 to `/ok`,
/// - `/fail`: 500, a server in trouble.
#[derive(Debug)]
pub struct SiteServer {
    base: String,
}

impl SiteServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the site server");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        Self { base }
    }

    /// The URL of a path on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// An address where nothing listens (bound, then released).
pub fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}/")
}

fn serve(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, extra, body) = match path {
        ok if ok == "/ok" || ok.starts_with("/ok/") => {
            ("200 OK", "", "<html><body>status: healthy, version=4.2</body></html>")
        }
        "/redirect" => ("302 Found", "Location: /ok\r\n", ""),
        "/fail" => ("500 Internal Server Error", "", "<html><body>something broke</body></html>"),
        _ => ("404 Not Found", "", "<html><body>no such page</body></html>"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}
