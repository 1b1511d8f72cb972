//! The VRRP scenes: the election of the master, its crash and the backup taking over, and
//! its return and preemption; in each handover the client loop measures how long it went
//! without answers, and a connection held open across it shows that flows survive.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use integration_tests::netns;

use crate::{
    ADVERT_INT, DIRECTORS, VIP, VRRP_VERSION,
    client::{ClientLoop, HeldConnection, PROBE_EVERY, PROBE_TIMEOUT, summarize},
    master_down, pause,
    stage::{Demo, config_text, pins_of, run_shown, xlb_label},
    step,
};

/// How long the client loop runs before the crash, and before dir1 comes back.
const LEAD: Duration = Duration::from_secs(1);
/// How long answers through the backup must keep coming after the failover.
const SETTLE: Duration = Duration::from_secs(2);
/// How long the client loop runs once dir1 has taken the VIP back.
const AFTERMATH: Duration = Duration::from_secs(1);
/// Until the master holds the VIP (election), and until the backup does after the crash.
const VIP_MOVE: Duration = Duration::from_secs(8);
/// Until the client gets answers again after the crash.
const ANSWERS_BACK: Duration = Duration::from_secs(10);

impl Demo {
    /// Waits until director `dir` holds the VIP (`present`) or no longer does; returns when
    /// it saw so.
    fn wait_vip(&self, dir: &str, present: bool) -> Instant {
        let from = Instant::now();
        from + netns::wait_vip(self.lab(), dir, present, VIP_MOVE)
    }

    /// Writes both directors' configs, starts xlb on both, waits for the election.
    pub fn election(&mut self) -> Result<()> {
        let [(master, _, high), (backup, _, low)] = DIRECTORS;
        let master_config = self.write_configs()?[0].clone();
        step(format!(
            "{master}'s config {} (keepalived's keywords); {backup}'s differs only in \
             priority = {low}:",
            master_config.display()
        ));
        for line in config_text(high).lines() {
            println!("    {line}");
        }
        step(format!(
            "VRRPv{VRRP_VERSION} with advert_int = {ADVERT_INT} s, for a quicker demo (v2, \
             keepalived's default, counts whole seconds: 1 s at least): a backup declares the \
             master dead after 3 x {ADVERT_INT} s + (256 - priority) / 256 x {ADVERT_INT} s \
             without adverts, {:.2} s for {master} and {:.2} s for {backup}",
            master_down(high),
            master_down(low)
        ));
        step(
            "lb_algo = \"mh\" with mh_port: a connection's real server is a Maglev hash of the \
             client's address and port, over a table that both directors build identically \
             from the same real servers; so whichever director a flow reaches, it lands on the \
             same real server, and connections survive a failover",
        );
        step(format!(
            "both directors: xlb run (logs {})",
            DIRECTORS
                .map(|(dir, _, _)| self.lab().log_path(&xlb_label(dir)).display().to_string())
                .join(", ")
        ));
        // dir1 first: started together, the one whose master-down interval ends first takes
        // the VIP for a moment, and the other takes it back at its first advert.
        let started = Instant::now();
        for (dir, _, _) in DIRECTORS {
            self.start_xlb(dir, &xlb_label(dir));
        }
        let took = self.wait_vip(master, true).duration_since(started);
        self.lab_mut()
            .wait_log(&xlb_label(master), "to=MASTER", VIP_MOVE);
        if netns::has_address(self.lab(), backup, VIP) {
            bail!("both directors hold the VIP");
        }
        step(format!(
            "election: {master} (priority {high}) holds the VIP {:.1} s after its start (each \
             starts as BACKUP and becomes MASTER if no advert from a higher priority came \
             within its master-down interval); {backup} stays BACKUP",
            took.as_secs_f64()
        ));
        self.show_vrrp();
        Ok(())
    }

    /// Crashes the master while the client loop runs; measures the client's silence.
    pub fn failover(&mut self) -> Result<()> {
        let [(master, _, _), (backup, _, low)] = DIRECTORS;
        step(format!(
            "failover. The client loop starts: a new HTTP request to {VIP}:80 every {} ms, \
             each on its own TCP connection with a {} s timeout, from threads in {}; the \
             requests overlap, so one lost in the failover does not hold up the next",
            PROBE_EVERY.as_millis(),
            PROBE_TIMEOUT.as_secs(),
            self.lab().ns("client")
        ));
        step(format!(
            "and one more connection through {master}, opened now with its request only half \
             sent: it is finished after the failover"
        ));
        let held = HeldConnection::open(self.lab())?;
        let client = ClientLoop::start(self.lab().netns_file("client"))?;
        pause(LEAD);
        if client.answered() == 0 {
            bail!("the client loop got no answer before the crash");
        }
        step(format!(
            "crash of {master}, the master: its link goes down first (whatever it does next \
             reaches no one, not even a priority-0 advert), then its xlb gets SIGKILL; \
             {backup} has to notice that the adverts stopped"
        ));
        let crash = Instant::now();
        self.lab().sh(master, "ip link set eth0 down");
        let down = Instant::now();
        let pid = self.lab_mut().kill(&xlb_label(master), libc::SIGKILL);
        println!("  $ ip link set eth0 down   (in {master})");
        println!("  $ kill -KILL {pid}   (xlb run in {master})");
        let moved = self.wait_vip(backup, true);
        self.lab_mut()
            .wait_log(&xlb_label(backup), "to=MASTER", VIP_MOVE);
        let deadline = crash + ANSWERS_BACK;
        let resumed = loop {
            if let Some(at) = client.first_answer_sent_after(down) {
                break at;
            }
            if Instant::now() > deadline {
                let mut errors: Vec<String> = client
                    .snapshot()
                    .into_iter()
                    .filter(|p| p.sent >= down)
                    .filter_map(|p| p.answer.err())
                    .collect();
                errors.sort_unstable();
                errors.dedup();
                bail!(
                    "the client got no answer within {ANSWERS_BACK:?} of the crash, though \
                     {backup} holds the VIP (requests since: {})",
                    if errors.is_empty() {
                        "none finished".to_string()
                    } else {
                        errors.join("; ")
                    }
                );
            }
            pause(Duration::from_millis(20));
        };
        // Answers through the backup for a while.
        pause((resumed + SETTLE).saturating_duration_since(Instant::now()));
        let probes = client.finish();
        let held = held.finish();
        println!(
            "    {backup} holds the VIP {:.2} s after the crash (polled every 10 ms)",
            moved.duration_since(crash).as_secs_f64()
        );
        let (before, after) = summarize(&probes, crash, "the crash")?;
        step(format!(
            "the client saw no answers for {:.2} s, from the last answer before the crash to \
             the first answer through {backup} (expected {:.2} to {:.2} s: {backup}'s \
             master-down interval runs from {master}'s last advert, sent 0 to {ADVERT_INT} s \
             before the crash)",
            after.duration_since(before).as_secs_f64(),
            master_down(low) - ADVERT_INT,
            master_down(low)
        ));
        match held {
            Ok(answer) => step(format!(
                "the connection opened through {master} before the crash, finished through \
                 {backup}: \"{answer}\": {backup} sent it to the real server that had accepted \
                 it (another would have reset it)"
            )),
            Err(err) => bail!(
                "the connection opened through {master} before the crash failed after the \
                 failover: {err}"
            ),
        }
        step(format!("{backup} holds the VIP now:"));
        self.show_vrrp();
        step(format!(
            "gratuitous ARP from {backup} moved the client's ARP entry:"
        ));
        self.show_arp(backup)?;
        step(format!(
            "what {backup}'s data plane counted (it forwards only while MASTER: these are the \
             flows since the failover):"
        ));
        run_shown(
            std::process::Command::new(self.xlb())
                .arg("status")
                .arg("--pin-path")
                .arg(pins_of(backup)),
        )
    }

    /// The crashed master comes back and preempts; measures the client's silence.
    pub fn comeback(&mut self) -> Result<()> {
        let [(master, _, high), (backup, _, low)] = DIRECTORS;
        step(format!(
            "{master} comes back, as after a reboot, and runs xlb again: priority {high} > \
             {low}, so it preempts {backup} when its master-down interval ({:.2} s) ends, and \
             {backup} steps down at its first advert. The client loop runs again, and a \
             connection is opened through {backup}, to be finished through {master}",
            master_down(high)
        ));
        let held = HeldConnection::open(self.lab())?;
        let client = ClientLoop::start(self.lab().netns_file("client"))?;
        pause(LEAD);
        let start = Instant::now();
        if netns::has_address(self.lab(), master, VIP) {
            // xlb was killed before it saw its link go down: the VIP is still there, as a
            // reboot would not have left it.
            self.lab()
                .sh(master, &format!("ip addr del {VIP}/32 dev eth0"));
            println!("  $ ip addr del {VIP}/32 dev eth0   (in {master}: the crash left it there)");
        }
        self.lab().sh(master, "ip link set eth0 up");
        println!("  $ ip link set eth0 up   (in {master})");
        let label = format!("{}-again", xlb_label(master));
        self.start_xlb(master, &label);
        let taken = self.wait_vip(master, true);
        let left = self.wait_vip(backup, false);
        self.lab_mut().wait_log(&label, "to=MASTER", VIP_MOVE);
        self.lab_mut()
            .wait_log(&xlb_label(backup), "from=MASTER to=BACKUP", VIP_MOVE);
        pause(AFTERMATH);
        let probes = client.finish();
        let held = held.finish();
        println!(
            "    {master} holds the VIP {:.2} s after its link came up; {backup} had dropped it \
             {:.2} s later (both polled every 10 ms)",
            taken.duration_since(start).as_secs_f64(),
            left.saturating_duration_since(taken).as_secs_f64()
        );
        let (before, after) = summarize(&probes, start, &format!("{master}'s return"))?;
        step(format!(
            "during the preemption the client's longest wait between two answers was {:.2} s \
             (a request every {} ms)",
            after.duration_since(before).as_secs_f64(),
            PROBE_EVERY.as_millis()
        ));
        match held {
            Ok(answer) => step(format!(
                "the connection opened through {backup}, finished through {master}: \
                 \"{answer}\""
            )),
            Err(err) => {
                bail!("the connection opened through {backup} failed after the preemption: {err}")
            }
        }
        step(format!("{master} holds the VIP again:"));
        self.show_vrrp();
        step(format!(
            "gratuitous ARP from {master} moved the client's ARP entry back:"
        ));
        self.show_arp(master)
    }
}
