//! Whole log lines for sinks that need them: the fmt layer writes an event through a
//! writer made for it; [`Lines`] makes one that collects the bytes and hands the sink the
//! complete line, with the event's level, when it is dropped. The journal sink (stderr
//! prefixed with sd-daemon(3) priorities) lives here too.

use std::{
    io::{self, Write},
    sync::Arc,
};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Where whole lines go.
pub trait Sink: Send + Sync {
    /// One event's text (one line, or a few for multi-line messages, newline-terminated).
    fn emit(&self, level: Level, text: &[u8]);
}

/// A `MakeWriter` that hands each event's text to the sink in one piece.
pub struct Lines<S>(pub Arc<S>);

/// The writer of one event.
pub struct Line<'a, S: Sink> {
    sink: &'a S,
    level: Level,
    buf: Vec<u8>,
}

impl<'a, S: Sink + 'a> MakeWriter<'a> for Lines<S> {
    type Writer = Line<'a, S>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            sink: &self.0,
            level: Level::INFO,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line {
            sink: &self.0,
            level: *meta.level(),
            buf: Vec::new(),
        }
    }
}

impl<S: Sink> Write for Line<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Sink> Drop for Line<'_, S> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.emit(self.level, &self.buf);
        }
    }
}

/// The syslog severity of a level (RFC 5424 numbers): error 3, warning 4, info 6, debug 7.
pub fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Every line of `text` with `<severity>` in front, as journald reads stderr
/// (SyslogLevelPrefix=, on by default).
pub fn with_priority(level: Level, text: &[u8]) -> Vec<u8> {
    let prefix = format!("<{}>", severity(level));
    let mut out = Vec::with_capacity(text.len() + 8);
    for line in text.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// stderr connected to journald: lines carry their priority.
pub struct Journal;

impl Sink for Journal {
    fn emit(&self, level: Level, text: &[u8]) {
        let _ = io::stderr().lock().write_all(&with_priority(level, text));
    }
}

/// Whether stderr is the journal stream systemd set up (`JOURNAL_STREAM=<dev>:<inode>`
/// matching stderr's, as systemd.exec(5) says to check).
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    // SAFETY: fstat of fd 2 into a zeroed stat of our own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>() == Ok(st.st_dev) && ino.parse::<u64>() == Ok(st.st_ino)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Level, Vec<u8>)>>);

    impl Sink for Recorder {
        fn emit(&self, level: Level, text: &[u8]) {
            self.0.lock().unwrap().push((level, text.to_vec()));
        }
    }

    #[test]
    fn an_event_written_in_pieces_reaches_the_sink_once_whole() {
        let lines = Lines(Arc::new(Recorder::default()));
        {
            let mut w = lines.make_writer();
            w.write_all(b"half ").unwrap();
            w.write_all(b"and half\n").unwrap();
        }
        let got = lines.0.0.lock().unwrap().clone();
        assert_eq!(got, vec![(Level::INFO, b"half and half\n".to_vec())]);
    }

    #[test]
    fn journal_lines_carry_their_priority() {
        assert_eq!(with_priority(Level::ERROR, b"boom\n"), b"<3>boom\n");
        assert_eq!(with_priority(Level::WARN, b"a\nb\n"), b"<4>a\n<4>b\n");
        assert_eq!(
            with_priority(Level::DEBUG, b"no newline"),
            b"<7>no newline\n"
        );
    }
}
