//! The `identity` command's tests in one binary: the operator commands (admin_*), `serve`
//! (cli) and the browser journeys (browser).

/// A free port on 127.0.0.1 for a server a test starts (every test server listens there).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

mod admin_addon;
mod admin_jwt;
mod browser;
mod cli;
mod oauth_admin;
