//! The checkpoint writer: a thread of its own, so that a slow disk never stops the ingest loop
//! from reading lines or answering a scrape.
//!
//! The ingest loop serialises the checkpoint (the state as it is at that instant) and hands
//! the document over; the writer writes it atomically and says how it went. One write is in
//! flight at most: a checkpoint that falls due meanwhile waits for the next tick, so a stalled
//! disk costs memory for one document, not a queue.
//!
//! Each write is renamed into place, which is what a process killed (kill -9, OOM, a container
//! restart) finds when it starts again: that is what `/metrics` may show. Flushing to disk (an
//! `fsync` waits behind whatever else the disk is writing: a second under a busy proxy log) is
//! done by a second thread every [`SYNC_EVERY`], so it never delays the next write, and once
//! more at shutdown: a crash of the machine loses at most that much progress, read again.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::tail::{CheckpointError, Flush, sync_to_disk, write_document_atomic};

/// How often the checkpoint is also flushed to disk.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(10);

/// How a write went, and how long it took; the document's buffer comes back for the next.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) result: Result<(), CheckpointError>,
    pub(crate) took: Duration,
    pub(crate) flush: Flush,
    pub(crate) buffer: Vec<u8>,
}

/// The `edge-checkpoint` and `edge-sync` threads and their channels.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: Option<Sender<Vec<u8>>>,
    written: Receiver<Written>,
    stop_sync: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    in_flight: bool,
}

impl Writer {
    /// Starts the threads writing to and flushing `path`.
    ///
    /// # Errors
    ///
    /// A thread could not be started.
    pub(crate) fn spawn(path: PathBuf) -> std::io::Result<Self> {
        let (jobs, next) = bounded::<Vec<u8>>(1);
        let (done, written) = bounded(1);
        let (stop_sync, stopped) = bounded::<()>(0);
        let target = path.clone();
        let writer = std::thread::Builder::new()
            .name("edge-checkpoint".to_owned())
            .spawn(move || {
                for document in next {
                    let started = Instant::now();
                    let result = write_document_atomic(&target, &document, Flush::ToPageCache);
                    let written = Written {
                        result,
                        took: started.elapsed(),
                        flush: Flush::ToPageCache,
                        buffer: document,
                    };
                    if done.send(written).is_err() {
                        return;
                    }
                }
            })?;
        let syncer = std::thread::Builder::new()
            .name("edge-sync".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(SYNC_EVERY) {
                    // Nothing to flush before the first write; a failure is retried next time.
                    if path.exists()
                        && let Err(error) = sync_to_disk(&path)
                    {
                        tracing::warn!(%error, path = %path.display(), "cannot flush the checkpoint to disk");
                    }
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            written,
            stop_sync: Some(stop_sync),
            threads: vec![writer, syncer],
            in_flight: false,
        })
    }

    /// Whether a write is under way.
    pub(crate) fn busy(&self) -> bool {
        self.in_flight
    }

    /// Hands a document over; the caller checked that the writer is not [`busy`](Self::busy).
    pub(crate) fn submit(&mut self, document: Vec<u8>) {
        if let Some(jobs) = &self.jobs
            && jobs.send(document).is_ok()
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
        // Closing the channels ends the threads once their work at hand is done.
        self.jobs.take();
        self.stop_sync.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
