//! The background translator: a thread that translates hot blocks while
//! the processor goes on interpreting them, so that code generation takes
//! no time from the guest where the host has a core to spare.
//!
//! A block asked for gets a job number (`decode::Block::job`); the result
//! comes back with it and is installed in the block at the next point the
//! run loop looks (`SoftCpu::install_translations`). A block dropped
//! meanwhile (its page written or replaced) is gone, and a block built
//! again in its place has no job number, so a late result finds nothing to
//! go to and is dropped. What the guest sees does not depend on when a
//! translation arrives: translated code does what the interpreter does.

use super::translate::Translator;
use super::{JitError, Native};
use crate::decode::Op;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Instant;

/// A block to translate.
pub(crate) struct Job {
    /// The job's number, as in the block.
    pub id: u32,
    /// Host-physical address of the block's first instruction.
    pub hpa: u64,
    /// The instructions to translate (copies of the block's).
    pub ops: Vec<Op>,
    /// Code size and address of the first instruction.
    pub bitness: u32,
    pub start: u64,
}

/// A finished job.
pub(crate) struct Done {
    pub id: u32,
    pub hpa: u64,
    pub result: Result<Native, JitError>,
    /// Host time the translation took, in nanoseconds.
    pub ns: u64,
}

/// The translating thread's ends of the two queues, seen from the processor.
pub(crate) struct Worker {
    jobs: Sender<Job>,
    done: Receiver<Done>,
    /// Jobs sent and not yet received back.
    pub in_flight: u32,
}

impl Worker {
    /// Starts the thread; it ends once the worker is dropped.
    pub(crate) fn start() -> std::io::Result<Worker> {
        let (jobs, queue) = channel::<Job>();
        let (results, done) = channel::<Done>();
        std::thread::Builder::new()
            .name("softcpu-translate".into())
            .spawn(move || {
                let mut translator = Translator::new();
                for job in queue {
                    let t0 = Instant::now();
                    let result = match &mut translator {
                        Ok(t) => t.translate(&job.ops, job.bitness, job.start),
                        Err(e) => Err(JitError::Setup(e.to_string())),
                    };
                    let done = Done {
                        id: job.id,
                        hpa: job.hpa,
                        result,
                        ns: t0.elapsed().as_nanos() as u64,
                    };
                    if results.send(done).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Worker {
            jobs,
            done,
            in_flight: 0,
        })
    }

    /// Queues `job`; false when the thread is gone.
    pub(crate) fn submit(&mut self, job: Job) -> bool {
        let sent = self.jobs.send(job).is_ok();
        if sent {
            self.in_flight += 1;
        }
        sent
    }

    /// A finished job, if one is waiting.
    pub(crate) fn next_done(&mut self) -> Option<Done> {
        let done = self.done.try_recv().ok()?;
        self.in_flight -= 1;
        Some(done)
    }
}
