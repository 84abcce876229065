//! The `edge-tail` thread: [`Tailer::spawn`] polls and sends into a bounded channel.

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{SendTimeoutError, Sender};

use super::follow::Tailer;
use super::types::TailMessage;

/// How long a blocked send waits before looking at the shutdown flag again.
const SEND_RETRY: Duration = Duration::from_millis(100);

impl Tailer {
    /// Runs [`poll`](Self::poll) in a thread named `edge-tail` every
    /// [`poll_interval`](super::TailConfig::poll_interval) (at once while a backlog remains), sending
    /// the messages into `sender`. A full channel blocks the thread: reading slows down,
    /// memory does not grow. The thread ends when `shutdown` is set (also while blocked on a
    /// full channel, within 100 ms) or, at its next message, once the receiver is dropped.
    /// Messages not sent by then are dropped, which a consumer following the checkpoint
    /// protocol does not notice: they are read again after a restart.
    ///
    /// # Errors
    ///
    /// The thread cannot be spawned.
    pub fn spawn(
        mut self,
        sender: Sender<TailMessage>,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<JoinHandle<()>> {
        thread::Builder::new()
            .name("edge-tail".to_owned())
            .spawn(move || {
                let receiver_gone = Cell::new(false);
                let mut deliver = |message: TailMessage| {
                    let delivery = send_until_shutdown(&sender, message, &shutdown);
                    receiver_gone.set(delivery == Delivery::ReceiverGone);
                    delivery == Delivery::Sent
                };
                while !shutdown.load(Ordering::Acquire) {
                    let more = self.poll_with(&mut deliver);
                    if receiver_gone.get() {
                        break;
                    }
                    if !more && !shutdown.load(Ordering::Acquire) {
                        thread::sleep(self.config.poll_interval);
                    }
                }
            })
    }
}

/// What became of a message handed to the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Sent,
    ShutDown,
    ReceiverGone,
}

/// Sends one message, waiting while the channel is full unless `shutdown` is set.
fn send_until_shutdown(
    sender: &Sender<TailMessage>,
    mut message: TailMessage,
    shutdown: &AtomicBool,
) -> Delivery {
    loop {
        match sender.send_timeout(message, SEND_RETRY) {
            Ok(()) => return Delivery::Sent,
            Err(SendTimeoutError::Timeout(back)) => {
                if shutdown.load(Ordering::Acquire) {
                    return Delivery::ShutDown;
                }
                message = back;
            }
            Err(SendTimeoutError::Disconnected(_)) => return Delivery::ReceiverGone,
        }
    }
}
