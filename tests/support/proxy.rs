//! A TCP proxy that drops every connection after the client has sent a
//! given number of bytes: a network that dies in the middle of a push.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
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
