//! SMTP client primitives: reading a relay's or a server's reply, multi-line replies
//! (`250-...`) to their last line.

use tokio::io::AsyncBufReadExt;

use super::io_reason;

/// The code of a complete reply, reading continuation lines (`NNN-`) until the last
/// (`NNN ` or `NNN`).
pub(crate) async fn reply<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    what: &str,
) -> Result<u16, String> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = r
            .read_line(&mut line)
            .await
            .map_err(|e| format!("{what}: {}", io_reason(&e)))?;
        if n == 0 {
            return Err(format!("{what}: connection closed"));
        }
        if line.len() > 1024 {
            return Err(format!("{what}: line too long"));
        }
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("{what}: not an SMTP reply: {:?}", line.trim_end()))?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_are_read_to_their_last_line() {
        let mut multi: &[u8] = b"250-mx.example.org\r\n250-PIPELINING\r\n250 OK\r\nnext";
        assert_eq!(reply(&mut multi, "EHLO").await, Ok(250));
        assert_eq!(multi, b"next");
        let mut bare: &[u8] = b"221\r\n";
        assert_eq!(reply(&mut bare, "QUIT").await, Ok(221));
        let mut closed: &[u8] = b"250-more to come\r\n";
        assert_eq!(
            reply(&mut closed, "HELO").await,
            Err("HELO: connection closed".to_owned())
        );
        let mut ssh: &[u8] = b"SSH-2.0-OpenSSH_9.2\r\n";
        assert_eq!(
            reply(&mut ssh, "greeting").await,
            Err("greeting: not an SMTP reply: \"SSH-2.0-OpenSSH_9.2\"".to_owned())
        );
    }
}
