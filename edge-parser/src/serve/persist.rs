//! The checkpoint writer: a thread of its own, so that a slow disk (an `fsync` can take a
//! second) never stops the ingest loop from reading lines or answering a scrape.
//!
//! The ingest loop serialises the checkpoint (the state as it is at that instant) and hands
//! the document over; the writer writes it atomically and says how it went. One write is in
//! flight at most: a checkpoint that falls due meanwhile waits for the next tick, so a stalled
//! disk costs memory for one document, not a queue.
//!
//! Each write is renamed into place, which is what a process killed (kill -9, OOM, a container
//! restart) finds when it starts again: that is what `/metrics` may show. Flushing to disk (an
//! `fsync` stalls behind whatever else the disk is writing, a second under a busy proxy log) is
//! done every [`SYNC_EVERY`] and at shutdown, so a crash of the machine loses at most that much
//! progress, which is read again.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::tail::{CheckpointError, Flush, write_document_atomic};

/// How often a checkpoint is also flushed to disk.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(10);

/// How a write went, and how long it took; the document's buffer comes back for the next.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) result: Result<(), CheckpointError>,
    pub(crate) took: Duration,
    pub(crate) flush: Flush,
    pub(crate) buffer: Vec<u8>,
}

/// The `edge-checkpoint` thread and its two channels.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: Option<Sender<(PathBuf, Vec<u8>)>>,
    written: Receiver<Written>,
    thread: Option<JoinHandle<()>>,
    in_flight: bool,
}

impl Writer {
    /// Starts the thread.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub(crate) fn spawn() -> std::io::Result<Self> {
        let (jobs, next) = bounded::<(PathBuf, Vec<u8>)>(1);
        let (done, written) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("edge-checkpoint".to_owned())
            .spawn(move || {
                let mut synced: Option<Instant> = None;
                for (path, document) in next {
                    let started = Instant::now();
                    let flush = if synced.is_none_or(|at| at.elapsed() >= SYNC_EVERY) {
                        Flush::ToDisk
                    } else {
                        Flush::ToPageCache
                    };
                    let result = write_document_atomic(&path, &document, flush);
                    if result.is_ok() && flush == Flush::ToDisk {
                        synced = Some(started);
                    }
                    let written = Written {
                        result,
                        took: started.elapsed(),
                        flush,
                        buffer: document,
                    };
                    if done.send(written).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            written,
            thread: Some(thread),
            in_flight: false,
        })
    }

    /// Whether a write is under way.
    pub(crate) fn busy(&self) -> bool {
        self.in_flight
    }

    /// Hands a document over; the caller checked that the writer is not [`busy`](Self::busy).
    pub(crate) fn submit(&mut self, path: PathBuf, document: Vec<u8>) {
        if let Some(jobs) = &self.jobs
            && jobs.send((path, document)).is_ok()
        {
            self.in_flight = true;
        }
    }

    /// Where the outcomes arrive (for the ingest loop's `select!`).
    pub(crate) fn outcomes(&self) -> Receiver<Written> {
        self.written.clone()
    }

    /// Notes an outcome received from [`outcomes`](Self::outcomes).
    pub(crate) fn received(&mut self) {
        self.in_flight = false;
    }

    /// Waits for the write under way, if any.
    pub(crate) fn wait(&mut self) -> Option<Written> {
        if !self.in_flight {
            return None;
        }
        self.in_flight = false;
        self.written.recv().ok()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the job channel ends the thread once its write is done.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
