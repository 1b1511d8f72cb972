//! Every input of the daemon as one [`Event`] on one channel. The sources (signals,
//! control-socket connections, timers, the neighbour watch, health verdicts, VRRP gate requests, stopping instances)
//! are small tasks that only forward; the daemon's loop takes the events one at a time.

use std::{future::Future, time::Duration};

use futures::{Stream, StreamExt};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{control::Call, signals::Dump};
use crate::{control::Reply, health::Verdict, netlink::NeighborEvent, vrrp::instance::GateRequest};

/// Events waiting for the loop; a source with an event to post waits when full.
pub const QUEUE: usize = 256;

/// One input of the daemon; see the module documentation.
pub enum Event {
    /// SIGHUP: load the config again and apply the difference.
    Reload,
    /// SIGTERM, SIGINT, SIGQUIT or the caller's shutdown future: resign and stop.
    Shutdown,
    /// SIGUSR1, SIGUSR2, ...: write a dump (see `signals`).
    Dump(Dump),
    /// A VRRP instance changed state: switch its services, then answer it.
    Gate(GateRequest),
    /// A stopping VRRP instance (by name) has resigned and ended.
    InstanceStopped(String),
    /// A change in the kernel's neighbour table.
    Neighbor(NeighborEvent),
    /// Time to ask again for the MACs of unresolved real servers.
    ResolveRetry,
    /// Time to have the kernel re-confirm every known real server's MAC.
    Refresh,
    /// Time to write the status file.
    Publish,
    /// Time for the watchdog to look at what is attached and pinned.
    Watch,
    /// A health checker's verdict on a real server.
    Verdict(Verdict),
    /// A control-socket request (`daemon::control`); the reply goes back on the oneshot.
    Control(Call, oneshot::Sender<Reply>),
    /// Time to tell systemd's watchdog that the loop is alive (half of WATCHDOG_USEC).
    Watchdog,
    /// A route, rule or address was removed: a static one of ours goes back.
    StaticRemoved(super::statics::StaticRemoval),
    /// A link changed: the static entries through it may need adding again.
    StaticLink(crate::netlink::LinkEvent),
}

/// The forwarding tasks; dropping this ends them.
#[derive(Default)]
pub struct Inputs {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inputs {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Inputs {
    /// Posts every item of `stream` as `event(item)`.
    pub fn forward<S, F>(&mut self, to: &mpsc::Sender<Event>, stream: S, event: F)
    where
        S: Stream + Send + 'static,
        S::Item: Send,
        F: Fn(S::Item) -> Event + Send + 'static,
    {
        let to = to.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                if to.send(event(item)).await.is_err() {
                    break;
                }
            }
        }));
    }

    /// Posts every message of `rx` as `event(message)`.
    pub fn forward_channel<T: Send + 'static>(
        &mut self,
        to: &mpsc::Sender<Event>,
        rx: mpsc::Receiver<T>,
        event: fn(T) -> Event,
    ) {
        self.forward(to, receiver_stream(rx), event);
    }

    /// Posts `event` every `period`, the first one at once.
    pub fn every(&mut self, to: &mpsc::Sender<Event>, period: Duration, event: fn() -> Event) {
        let ticks = futures::stream::unfold(tokio::time::interval(period), |mut interval| async {
            interval.tick().await;
            Some(((), interval))
        });
        self.forward(to, ticks, move |()| event());
    }

    /// Posts `event` once `done` completes.
    pub fn once(
        &mut self,
        to: &mpsc::Sender<Event>,
        done: impl Future<Output = ()> + Send + 'static,
        event: fn() -> Event,
    ) {
        self.forward(to, futures::stream::once(done), move |()| event());
    }
}

/// Posts `event` once `done` completes (a task of its own, not kept: it ends by itself).
pub fn when_done(
    to: &mpsc::Sender<Event>,
    done: impl Future<Output = ()> + Send + 'static,
    event: Event,
) {
    let to = to.clone();
    tokio::spawn(async move {
        done.await;
        let _ = to.send(event).await;
    });
}

fn receiver_stream<T>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|m| (m, rx)) })
}
