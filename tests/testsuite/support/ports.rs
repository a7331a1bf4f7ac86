//! A port where nothing listens, that stays so for as long as it is held.
//!
//! Picking a free port by binding `:0` and closing the listener leaves a
//! window in which another test (a thread of this binary) or another
//! process running at the same time can take the port: the "refused"
//! connection then reaches a stranger. A socket that is bound but never listens keeps the port ours,
//! and a connection to it is refused at once.

/// Holds the port until dropped.
pub struct RefusedPort {
    _socket: tokio::net::TcpSocket,
    pub port: u16,
}

pub fn refused_port() -> RefusedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("bind a free port");
    let port = socket.local_addr().expect("its address").port();
    RefusedPort {
        _socket: socket,
        port,
    }
}
