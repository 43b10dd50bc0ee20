//! Raw, blocking WebSocket clients for the abuse checks: bound to a chosen
//! address in 127.0.0.0/8 (so one machine acts as several peers), the
//! upgrade written by hand, frames written masked, nothing read unless asked.
//! Independent of the server's runtime.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// `127.0.0.<n>`.
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A TCP connection to `server` from `local` (port chosen by the system).
pub fn connect_from(local: IpAddr, server: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(server),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.bind(&SockAddr::from(SocketAddr::new(local, 0)))?;
    sock.connect_timeout(&SockAddr::from(server), Duration::from_secs(5))?;
    let stream: TcpStream = sock.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A WebSocket upgrade request for `path` with `extra` header lines.
pub fn upgrade_request(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Sends the upgrade and reads the response head (byte by byte, so nothing
/// after it is consumed); returns the status code, or `None` when the server
/// closed or did not answer within `wait`.
pub fn upgrade(
    stream: &mut TcpStream,
    path: &str,
    extra: &[(&str, &str)],
    wait: Duration,
) -> io::Result<Option<u16>> {
    stream.write_all(&upgrade_request(path, extra))?;
    stream.set_read_timeout(Some(wait))?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Ok(_) => return Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    stream.set_read_timeout(None)?;
    let text = String::from_utf8_lossy(&head);
    Ok(text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok()))
}

/// A masked client frame (`opcode`, FIN set) of any length.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5au8, 0x17, 0xc3, 0x81];
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one server frame (unmasked); `(opcode, payload)`.
pub fn read_frame(stream: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    stream.read_exact(&mut h)?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b)?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload)?;
    Ok((h[0] & 0x0f, payload))
}

/// Reads frames until a close arrives (within `wait` of silence); its code,
/// 1006 when the connection ended without one, `None` on timeout.
pub fn close_code(stream: &mut TcpStream, wait: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(wait)).ok()?;
    loop {
        match read_frame(stream) {
            Ok((0x8, p)) if p.len() >= 2 => return Some(u16::from_be_bytes([p[0], p[1]])),
            Ok((0x8, _)) => return Some(1005),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(1006),
        }
    }
}

/// The resident set size of process `pid`, bytes (Linux `/proc`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
