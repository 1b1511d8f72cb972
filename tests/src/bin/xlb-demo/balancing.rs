//! The balancing scene: the client's requests through the master, who answered them next
//! to the configured weights, and what the master's pinned maps say (`xlb status`,
//! `xlb conns`, bpftool).

use std::{path::Path, process::Command, time::Instant};

use anyhow::{Context as _, Result, bail};

use crate::{
    DIRECTORS, VIP, reals,
    stage::{Demo, pins_of, run_shown, shown},
    step,
};

/// HTTP requests the client sends through the VIP, each on a new TCP connection.
const REQUESTS: usize = 60;
/// Failed requests after which the client gives up (a broken lab fails fast).
const MAX_FAILURES: usize = 5;
/// Bytes of filler in each HTTP answer (`GET /?size=N`), so the answers outweigh requests.
const BODY: usize = 10_000;
/// Answers printed as they came.
const SHOWN: usize = 6;

impl Demo {
    /// `REQUESTS` HTTP requests from the client through the VIP, each with its own curl (so
    /// on a new TCP connection). Returns each answer's first line, or the error.
    pub fn client_requests(&mut self) -> Result<Vec<Result<String, String>>> {
        let master = DIRECTORS[0].0;
        let url = format!("http://{VIP}/?size={BODY}");
        let curl = || {
            let mut cmd = self.lab().command("client", Path::new("curl"));
            cmd.args(["-sS", "--max-time", "3", &url]);
            cmd
        };
        step(format!(
            "client: {REQUESTS} HTTP requests to {url}, each on a new TCP connection"
        ));
        println!("{}   (x{REQUESTS})", shown(&curl()));
        let rx_before = self.lab().counter(master, "eth0", "rx_bytes");
        let started = Instant::now();
        let mut answers = Vec::with_capacity(REQUESTS);
        let mut failures = 0;
        for _ in 0..REQUESTS {
            if failures == MAX_FAILURES {
                break;
            }
            let out = curl()
                .output()
                .context("cannot start curl in the client namespace")?;
            integration_tests::netns::check_interrupted();
            let answer = if out.status.success() {
                let body = String::from_utf8_lossy(&out.stdout);
                let first = body.lines().next().unwrap_or_default().to_string();
                if body.len() == first.len() + 1 + BODY {
                    Ok(first)
                } else {
                    Err(format!(
                        "{first:?}: {} bytes of body, not {}",
                        body.len(),
                        first.len() + 1 + BODY
                    ))
                }
            } else {
                Err(format!(
                    "curl {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            };
            failures += usize::from(answer.is_err());
            answers.push(answer);
        }
        let elapsed = started.elapsed();
        let received = self
            .lab()
            .counter(master, "eth0", "rx_bytes")
            .saturating_sub(rx_before);
        for (i, answer) in answers.iter().take(SHOWN).enumerate() {
            match answer {
                Ok(body) => println!("    {:>2}: {body}", i + 1),
                Err(err) => println!("    {:>2}: FAILED {err}", i + 1),
            }
        }
        let more = answers.len().saturating_sub(SHOWN);
        if more > 0 {
            println!("    ... ({more} more)");
        }
        println!(
            "    {} requests in {:.1} s",
            answers.len(),
            elapsed.as_secs_f64()
        );
        if answers.len() < REQUESTS {
            println!("    gave up after {MAX_FAILURES} failed requests");
        }
        if failures > 0 {
            return Ok(answers);
        }
        step(format!(
            "\"rsN {VIP}:80\": the real server answered from the VIP, the director having \
             rewritten only MAC addresses (DR)"
        ));
        let sent = answers
            .iter()
            .flatten()
            .map(|a| a.len() + 1 + BODY)
            .sum::<usize>();
        step(format!(
            "the real servers sent {} KB of answers straight to the client; {master}'s eth0 \
             received {} KB in all (the client's side only)",
            sent / 1000,
            received / 1000
        ));
        Ok(answers)
    }

    /// The client's ARP entry (the master's MAC), `xlb status` of the master from its pinned
    /// maps, and bpftool on one of them.
    pub fn show_master(&mut self) -> Result<()> {
        let master = DIRECTORS[0].0;
        step(format!(
            "the client reaches the VIP at {master}'s MAC (its ARP entry):"
        ));
        self.show_arp(master)?;
        step(format!(
            "what {master}'s data plane counted, read from its pinned maps (xlb need not run):"
        ));
        let pins = pins_of(master);
        run_shown(
            Command::new(self.xlb())
                .arg("status")
                .arg("--pin-path")
                .arg(&pins),
        )?;
        step("the connections it tracks, as `ipvsadm -Lnc` lists them (xlb conns):");
        run_shown(
            Command::new(self.xlb())
                .arg("conns")
                .arg("--pin-path")
                .arg(&pins),
        )?;
        step("the maps are plain pinned BPF maps with BTF:");
        run_shown(
            Command::new("bpftool")
                .args(["map", "show", "pinned"])
                .arg(pins.join("xlb_conns4")),
        )?;
        step(format!(
            "(while a lab runs: `bpftool map dump pinned {}` prints the per-CPU counters with \
             field names)",
            pins.join("xlb_svc_stats").display()
        ));
        Ok(())
    }
}

/// Who answered how often, in the order of `reals()`; and what was wrong with the answers
/// (unanswered, from an unknown server, not from the VIP).
fn tally(answers: &[Result<String, String>]) -> (Vec<usize>, Vec<String>) {
    let reals = reals();
    let mut counts = vec![0usize; reals.len()];
    let mut problems = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let body = match answer {
            Ok(body) => body,
            Err(err) => {
                problems.push(format!("request {}: {err}", i + 1));
                continue;
            }
        };
        let (name, local) = body.split_once(' ').unwrap_or((body, ""));
        match reals.iter().position(|real| real.name == name) {
            Some(k) => counts[k] += 1,
            None => problems.push(format!("request {}: unexpected answer {body:?}", i + 1)),
        }
        if local != format!("{VIP}:80") {
            problems.push(format!(
                "request {}: {name} saw local address {local:?}, not the VIP (not DR)",
                i + 1
            ));
        }
    }
    (counts, problems)
}

/// Prints who answered how often against the configured weights; fails unless every request
/// was answered, from the VIP, and every real server got some.
pub fn report(answers: &[Result<String, String>]) -> Result<()> {
    let reals = reals();
    let total_weight: u32 = reals.iter().map(|real| real.weight).sum();
    let (counts, mut problems) = tally(answers);
    step(format!(
        "who answered the {} requests (mh hashes each connection: shares follow the weights \
         only roughly over {REQUESTS} connections):",
        answers.len()
    ));
    println!("    real server  address       answers   share   weight  weight share");
    for (real, count) in reals.iter().zip(counts) {
        println!(
            "    {:<11}  {:<12}  {count:>7}  {:>5.1}%  {:>7}  {:>11.1}%",
            real.name,
            real.addr,
            100.0 * count as f64 / answers.len().max(1) as f64,
            real.weight,
            100.0 * f64::from(real.weight) / f64::from(total_weight)
        );
        if count == 0 {
            problems.push(format!("{} ({}) got no request", real.name, real.addr));
        }
    }
    if answers.len() < REQUESTS {
        problems.push(format!(
            "the client gave up after {} of {REQUESTS} requests",
            answers.len()
        ));
    }
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(10).map(String::as_str).collect();
        bail!(
            "balancing did not work ({} problems):\n  {}",
            problems.len(),
            shown.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_per_server_and_flags_answers_not_from_the_vip() {
        let answers = vec![
            Ok(format!("rs1 {VIP}:80")),
            Ok(format!("rs3 {VIP}:80")),
            Ok(format!("rs1 {VIP}:80")),
            Ok("rs2 198.18.0.12:80".to_string()),
            Err("curl: timeout".to_string()),
        ];
        let (counts, problems) = tally(&answers);
        assert_eq!(counts, [2, 1, 1]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("not the VIP"));
        assert!(problems[1].starts_with("request 5"));
    }
}
