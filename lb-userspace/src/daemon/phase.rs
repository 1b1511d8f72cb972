//! The daemon's phases around stopping VRRP instances, and the ordering rules they set:
//! which events the loop handles now, which wait, which are dropped, and what follows
//! once the stopping instances have all stopped. Pure, so the rules have unit tests.

use super::event::Event;

/// Where the daemon stands with the stops of its VRRP instances.
#[derive(Debug, Default)]
pub struct Phase {
    /// Every instance resigns before the daemon exits.
    shutting_down: bool,
    /// A reload's changed or removed instances are stopping; the reload finishes after.
    restarting: bool,
    /// A SIGHUP that came while restarting.
    reload_waiting: bool,
}

/// What follows once the stopping instances have all stopped.
#[derive(Debug, PartialEq)]
pub enum AfterStops {
    /// Shutting down: leave the loop.
    Exit,
    /// The stops were a reload's: finish it, then reload again if a SIGHUP came meanwhile.
    FinishReload { then_reload: bool },
}

impl Phase {
    /// Whether `event` is handled now. Gate requests and stopped instances always are:
    /// a stopping instance waits for its services to be switched off; so is systemd's
    /// watchdog, since the loop still runs. While shutting down nothing else matters;
    /// while restarting, a reload waits for the one under way.
    pub fn admits(&mut self, event: &Event) -> bool {
        match event {
            Event::Gate(_) | Event::InstanceStopped(_) | Event::Watchdog => true,
            _ if self.shutting_down => false,
            Event::Reload if self.restarting => {
                self.reload_waiting = true;
                false
            }
            _ => true,
        }
    }

    /// A reload asked through the control socket while one is restarting instances:
    /// true when it must wait (it runs once the restart is over, as a SIGHUP would).
    pub fn defer_reload(&mut self) -> bool {
        if self.restarting {
            self.reload_waiting = true;
        }
        self.restarting
    }

    /// A reload has started stopping instances.
    pub fn restart(&mut self) {
        self.restarting = true;
    }

    /// Whether a reload's stopped instances have yet to stop (the reload is not over).
    pub fn restarting(&self) -> bool {
        self.restarting
    }

    /// Shutdown (or a failed start-up) has started resigning every instance.
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
    }

    /// The last stopping instance has stopped.
    pub fn stops_done(&mut self) -> AfterStops {
        self.restarting = false;
        if self.shutting_down {
            AfterStops::Exit
        } else {
            AfterStops::FinishReload {
                then_reload: std::mem::take(&mut self.reload_waiting),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::daemon::signals::Dump;
    use crate::vrrp::{instance::GateRequest, machine::State};

    fn gate() -> Event {
        Event::Gate(GateRequest {
            instance: "VI_1".into(),
            state: State::Backup,
            done: oneshot::channel().0,
        })
    }

    fn stopped() -> Event {
        Event::InstanceStopped("VI_1".into())
    }

    /// Every kind of event but gate requests and stopped instances.
    fn others() -> Vec<Event> {
        vec![
            Event::Reload,
            Event::Shutdown,
            Event::ResolveRetry,
            Event::Refresh,
            Event::Publish,
            Event::Dump(Dump::Stats),
        ]
    }

    #[test]
    fn running_every_event_is_handled() {
        let mut p = Phase::default();
        for e in others()
            .iter()
            .chain([&gate(), &stopped(), &Event::Watchdog])
        {
            assert!(p.admits(e));
        }
    }

    #[test]
    fn restarting_a_reload_waits_for_the_one_under_way() {
        let mut p = Phase::default();
        p.restart();
        assert!(!p.admits(&Event::Reload), "deferred");
        for e in [gate(), stopped(), Event::Shutdown, Event::Publish] {
            assert!(p.admits(&e));
        }
        assert_eq!(
            p.stops_done(),
            AfterStops::FinishReload { then_reload: true }
        );
        assert!(p.admits(&Event::Reload), "restart over");

        p.restart();
        assert_eq!(
            p.stops_done(),
            AfterStops::FinishReload { then_reload: false },
            "no SIGHUP meanwhile"
        );
    }

    #[test]
    fn shutting_down_only_the_resigning_instances_are_served() {
        let mut p = Phase::default();
        p.shut_down();
        assert!(p.admits(&gate()));
        assert!(p.admits(&stopped()));
        assert!(
            p.admits(&Event::Watchdog),
            "the loop still runs: systemd is told"
        );
        for e in others() {
            assert!(!p.admits(&e), "dropped");
        }
        assert_eq!(p.stops_done(), AfterStops::Exit);
    }

    #[test]
    fn a_shutdown_during_a_restart_exits_without_finishing_the_reload() {
        let mut p = Phase::default();
        p.restart();
        assert!(!p.admits(&Event::Reload));
        p.shut_down();
        assert_eq!(p.stops_done(), AfterStops::Exit);
    }

    #[test]
    fn a_control_reload_while_restarting_waits_like_a_sighup() {
        let mut p = Phase::default();
        assert!(!p.defer_reload(), "nothing under way: run it now");
        p.restart();
        assert!(p.defer_reload());
        assert_eq!(
            p.stops_done(),
            AfterStops::FinishReload { then_reload: true }
        );
    }
}
