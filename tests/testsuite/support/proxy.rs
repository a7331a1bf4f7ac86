//! Proxies for the tests: [`CuttingProxy`], a TCP proxy that drops every
//! connection after the client has sent a given number of bytes (a network
//! that dies in the middle of a push), and [`ConnectProxy`], an HTTP proxy
//! that tunnels CONNECT requests (a corporate proxy in front of a git host).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct CuttingProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Connections cut so far.
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    /// Forwards to `upstream`; after `limit` bytes from the client, both
    /// sides of that connection are closed.
    pub fn start(upstream: SocketAddr, limit: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (stop2, cuts2) = (stop.clone(), cuts.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let cuts = cuts2.clone();
                thread::spawn(move || relay(client, server, limit, &cuts));
            }
        });
        CuttingProxy { addr, stop, cuts }
    }

    /// How many connections were cut, to check the cut really happened.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Relays one connection, cutting it after `limit` bytes from the client.
fn relay(client: TcpStream, server: TcpStream, limit: usize, cuts: &AtomicUsize) {
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Both);
    });
    let (mut from_client, mut to_server) = (client, server);
    let mut sent = 0;
    let mut buf = [0u8; 4096];
    loop {
        let n = match from_client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = n.min(limit - sent);
        if to_server.write_all(&buf[..allowed]).is_err() {
            break;
        }
        sent += allowed;
        if sent == limit {
            cuts.fetch_add(1, Ordering::SeqCst);
            break;
        }
    }
    let _ = to_server.shutdown(Shutdown::Both);
    let _ = from_client.shutdown(Shutdown::Both);
    let _ = back.join();
}

/// An HTTP proxy that serves only CONNECT, tunnelling to loopback
/// addresses: what `http.proxy` / `HTTPS_PROXY` point git at for an https
/// remote. It records every request head it receives, and can require
/// `Proxy-Authorization: Basic` credentials. Stops accepting on Drop.
pub struct ConnectProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Each request's head (request line and headers), in arrival order.
    requests: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    /// A proxy without authentication. Its listener is bound before this
    /// returns, so it is ready at once.
    pub fn start() -> ConnectProxy {
        ConnectProxy::start_with(None)
    }

    /// A proxy that answers 407 unless the request carries
    /// `Proxy-Authorization: Basic base64(user:password)`.
    pub fn with_basic_auth(user: &str, password: &str) -> ConnectProxy {
        let expected = super::servers::base64(format!("{user}:{password}").as_bytes());
        ConnectProxy::start_with(Some(expected))
    }

    /// Binds 127.0.0.1:0 and serves each connection on its own thread.
    fn start_with(credentials: Option<String>) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (requests, credentials) = (requests2.clone(), credentials.clone());
                thread::spawn(move || tunnel(client, &requests, credentials.as_deref()));
            }
        });
        ConnectProxy {
            addr,
            stop,
            requests,
        }
    }

    /// `http://127.0.0.1:PORT`, for `http.proxy` or `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The heads of all requests received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// The targets (`host:port`) of the CONNECT requests received so far,
    /// whether or not they were let through.
    pub fn connects(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|head| {
                let mut words = head.lines().next()?.split(' ');
                (words.next()? == "CONNECT").then(|| words.next().map(str::to_string))?
            })
            .collect()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves one proxy connection: reads the request head, answers it, and for
/// an allowed CONNECT relays bytes both ways until either side closes.
fn tunnel(mut client: TcpStream, requests: &Mutex<Vec<String>>, credentials: Option<&str>) {
    // The head ends at the first blank line; the client sends nothing more
    // before our answer, but anything read past it is forwarded anyway.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    requests.lock().unwrap().push(head.clone());
    let answer = |client: &mut TcpStream, status: &str, extra: &str| {
        let _ = write!(
            client,
            "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "CONNECT" {
        return answer(&mut client, "405 Method Not Allowed", "");
    }
    if let Some(expected) = credentials {
        let given = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim().to_string())
        });
        let ok = given.is_some_and(|v| {
            v.split_once(' ').is_some_and(|(scheme, creds)| {
                scheme.eq_ignore_ascii_case("basic") && creds.trim() == expected
            })
        });
        if !ok {
            return answer(
                &mut client,
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"test-proxy\"\r\n",
            );
        }
    }
    // Only loopback: the tests' proxy must not reach out of the machine.
    let upstream = match target.parse::<SocketAddr>() {
        Ok(a) if a.ip().is_loopback() => TcpStream::connect(a),
        _ => return answer(&mut client, "403 Forbidden", ""),
    };
    let Ok(mut server) = upstream else {
        return answer(&mut client, "502 Bad Gateway", "");
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
        || server.write_all(&buf[end..]).is_err()
    {
        return;
    }
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut client, &mut server);
    let _ = server.shutdown(Shutdown::Write);
    let _ = back.join();
}
