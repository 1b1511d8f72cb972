//! The client's requests during failover and preemption, from threads in the client's
//! namespace (so the demo times them itself, to the millisecond): a loop of overlapping
//! requests, one connection held open across a handover, and what the loop saw.

use std::{
    fs::File,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, sleep},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use integration_tests::netns::{self, Lab};

use crate::{VIP, reals};

/// The client loop sends a new request this often, each given up after `PROBE_TIMEOUT`.
pub const PROBE_EVERY: Duration = Duration::from_millis(50);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// A request answered later than this lost a SYN (the first retransmission is after 1 s).
const LATE: Duration = Duration::from_millis(900);

fn vip_port80() -> SocketAddr {
    SocketAddr::new(VIP.parse().expect("VIP is an address"), 80)
}

/// Reads an HTTP answer until the server closes, by `deadline`; returns the body's first
/// line ("rsN VIP:80"), or what went wrong.
fn read_answer(stream: &mut TcpStream, deadline: Instant) -> Result<String, String> {
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no answer in time".to_owned());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no answer in time".to_owned());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let text = String::from_utf8_lossy(&response);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let first = body.lines().next().unwrap_or_default();
    match first.split_once(' ') {
        Some((name, local))
            if reals().iter().any(|real| real.name == name) && local == format!("{VIP}:80") =>
        {
            Ok(first.to_owned())
        }
        _ => Err(format!("unexpected answer {first:?}")),
    }
}

const REQUEST_LINE: &str = "GET / HTTP/1.0\r\n";

/// The rest of the request after `REQUEST_LINE`.
fn request_rest() -> String {
    format!("Host: {VIP}\r\n\r\n")
}

/// One HTTP request through the VIP on a new connection, within `PROBE_TIMEOUT`.
fn probe() -> Result<String, String> {
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&vip_port80(), PROBE_TIMEOUT).map_err(|e| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            "no connection in time".to_owned()
        } else {
            format!("connect: {e}")
        }
    })?;
    stream
        .write_all(format!("{REQUEST_LINE}{}", request_rest()).as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    read_answer(&mut stream, deadline)
}

/// One request of the client loop.
#[derive(Clone)]
pub struct Probe {
    pub sent: Instant,
    pub done: Instant,
    pub answer: Result<String, String>,
}

/// The client loop: a new request every `PROBE_EVERY` on a thread of its own (so a request
/// waiting for a lost SYN to be sent again does not delay the next one), until stopped.
pub struct ClientLoop {
    probes: Arc<Mutex<Vec<Probe>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ClientLoop {
    /// Starts the loop in `netns`, the client's namespace ([`Lab::netns_file`]).
    pub fn start(netns: File) -> Result<Self> {
        let probes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let probes = Arc::clone(&probes);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                if let Err(err) = netns::enter(&netns) {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                let mut requests: Vec<thread::JoinHandle<()>> = Vec::new();
                let mut next = Instant::now();
                while !stop.load(Ordering::SeqCst) && !netns::interrupted() {
                    let probes = Arc::clone(&probes);
                    requests.push(thread::spawn(move || {
                        let sent = Instant::now();
                        let answer = probe();
                        let done = Instant::now();
                        probes
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(Probe { sent, done, answer });
                    }));
                    requests.retain(|request| !request.is_finished());
                    next += PROBE_EVERY;
                    sleep(next.saturating_duration_since(Instant::now()));
                }
                for request in requests {
                    let _ = request.join();
                }
            })
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => bail!("cannot enter the client's namespace: {err}"),
            Err(_) => bail!("the client loop did not start"),
        }
        Ok(Self {
            probes,
            stop,
            thread: Some(thread),
        })
    }

    pub fn snapshot(&self) -> Vec<Probe> {
        self.probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn answered(&self) -> usize {
        self.snapshot().iter().filter(|p| p.answer.is_ok()).count()
    }

    /// When the first answer to a request sent at or after `t` came.
    pub fn first_answer_sent_after(&self, t: Instant) -> Option<Instant> {
        self.snapshot()
            .iter()
            .filter(|p| p.answer.is_ok() && p.sent >= t)
            .map(|p| p.done)
            .min()
    }

    /// Stops sending and waits for the requests under way (at most `PROBE_TIMEOUT`).
    pub fn finish(mut self) -> Vec<Probe> {
        self.halt();
        let mut probes = self.snapshot();
        probes.sort_by_key(|p| p.sent);
        probes
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ClientLoop {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Prints what the client loop saw, times relative to `reference` (`what`); returns the
/// longest silence: the answer before it and the answer after it.
pub fn summarize(probes: &[Probe], reference: Instant, what: &str) -> Result<(Instant, Instant)> {
    let (Some(first), Some(last)) = (probes.first(), probes.last()) else {
        bail!("the client loop sent no request");
    };
    let answered: Vec<&Probe> = probes.iter().filter(|p| p.answer.is_ok()).collect();
    let late = answered
        .iter()
        .filter(|p| p.done.duration_since(p.sent) > LATE)
        .count();
    let failed: Vec<&Probe> = probes.iter().filter(|p| p.answer.is_err()).collect();
    let mut servers: Vec<&str> = answered
        .iter()
        .filter_map(|p| p.answer.as_ref().ok())
        .filter_map(|a| a.split(' ').next())
        .collect();
    servers.sort_unstable();
    servers.dedup();
    let at = |t: Instant| -> String {
        if t >= reference {
            format!("+{:.2} s", t.duration_since(reference).as_secs_f64())
        } else {
            format!("-{:.2} s", reference.duration_since(t).as_secs_f64())
        }
    };
    println!(
        "    client loop: {} requests sent from {} to {} (times relative to {what}): {} \
         answered at once, {late} answered after a lost SYN was sent again, {} not answered \
         (answers came from {})",
        probes.len(),
        at(first.sent),
        at(last.sent),
        answered.len() - late,
        failed.len(),
        servers.join(" ")
    );
    let mut reasons: Vec<&str> = failed
        .iter()
        .filter_map(|p| p.answer.as_ref().err())
        .map(String::as_str)
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    if !reasons.is_empty() {
        println!("    unanswered: {}", reasons.join("; "));
    }
    let mut done: Vec<Instant> = answered.iter().map(|p| p.done).collect();
    done.sort_unstable();
    let (before, after) = done
        .windows(2)
        .map(|pair| (pair[0], pair[1]))
        .max_by_key(|(a, b)| b.duration_since(*a))
        .context("fewer than two answers: no silence to measure")?;
    println!(
        "    longest silence: from the answer at {} to the next one at {}",
        at(before),
        at(after)
    );
    Ok((before, after))
}

/// A connection through the VIP, opened with its request only half sent: finished later,
/// it shows whether the director in charge then sends it to the real server that accepted
/// it.
pub struct HeldConnection(TcpStream);

impl HeldConnection {
    /// Opens it from the client's namespace of `lab`.
    pub fn open(lab: &Lab) -> Result<Self> {
        let stream = lab.within("client", || -> Result<TcpStream> {
            let mut stream = TcpStream::connect_timeout(&vip_port80(), PROBE_TIMEOUT)
                .context("cannot connect to the VIP")?;
            stream.write_all(REQUEST_LINE.as_bytes())?;
            Ok(stream)
        })?;
        Ok(Self(stream))
    }

    /// Sends the rest of the request; the answer's first line.
    pub fn finish(mut self) -> Result<String, String> {
        let deadline = Instant::now() + PROBE_TIMEOUT;
        self.0
            .write_all(request_rest().as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        read_answer(&mut self.0, deadline)
    }
}
