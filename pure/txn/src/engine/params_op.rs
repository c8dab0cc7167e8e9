//! The EMV parameter download as an engine command: each step of [`ParamDownload`] goes out as
//! an administrative message (counters committed first, no MAC, like sign-in and echo), so the
//! STANs it uses are durable and never handed out twice.
//!
//! The engine keeps nothing of the parameters: [`Outcome::ParamsDownloaded`] hands the complete
//! set to the runtime, which stores it. A failed step ends the command with the error; nothing
//! of a partial download is returned.

use super::types::Op;
use super::{Engine, OpError, Outcome, State};
use crate::journal::JournalOp;
use crate::model::Now;
use crate::params::{ParamError, Progress};
use crate::proto::{self, Ctx, Reply};

impl Engine {
    /// Downloads the EMV parameters: CA public keys (60.3 372/370/371), then AIDs (382/380/381).
    /// Finishes with [`Outcome::ParamsDownloaded`], or with [`OpError::Params`] (bad host data;
    /// a profile without the messages: [`ParamError::NotSupported`]) or
    /// [`OpError::HostRefused`].
    pub fn start_param_download(&mut self, now: Now) {
        if self.run.is_none()
            && let Some(e) = self.params_unsupported()
        {
            self.emit(super::Event::Finished(super::Finished {
                command: super::Command::ParamDownload,
                result: Err(OpError::Params(e)),
            }));
            return;
        }
        self.begin(now, Op::Params(Box::default()));
    }

    /// `Some` when the profile lacks a template of the download (checked before anything is sent).
    fn params_unsupported(&self) -> Option<ParamError> {
        let profile = &self.cfg.profile;
        crate::params::ParamMessage::ALL
            .iter()
            .any(|m| profile.template(m.msg_type()).is_none())
            .then(|| ParamError::NotSupported {
                profile: profile.name().to_owned(),
            })
    }

    /// Sends the download's next request.
    pub(super) fn params_send(&mut self, now: Now) {
        let Some(Op::Params(download)) = self.op() else {
            return;
        };
        let Some(req) = download.next_request() else {
            self.finish(Err(OpError::Params(ParamError::Finished)));
            return;
        };
        let stan = self.counters.next_stan();
        let ctx = Ctx {
            stan,
            batch: self.counters.batch,
            ..Ctx::default()
        };
        // As `admin`: the counters are committed before the request leaves.
        let counters = self.counters;
        self.commit(vec![JournalOp::PutCounters(counters)]);
        let msg = req.message.msg_type();
        match proto::build(&self.cfg.profile, &self.cfg.identity, msg, &ctx) {
            Ok(mut m) => {
                if let Some(f62) = req.field62 {
                    m.set(62, f62);
                }
                self.transmit(now, &m, false, msg, None, |wait| State::ExpectResponse {
                    wait,
                });
            }
            Err(e) => self.finish(Err(OpError::Proto(e.to_string()))),
        }
    }

    /// Feeds an answer to the download; sends the next step or finishes.
    pub(super) fn params_reply(&mut self, now: Now, reply: Reply) {
        let Some(Op::Params(download)) = self.op_mut() else {
            return;
        };
        match download.handle_reply(&reply.response_code, reply.private62.as_deref()) {
            Ok(Progress::Continue) => self.params_send(now),
            Ok(Progress::Done(params)) => self.finish(Ok(Outcome::ParamsDownloaded(params))),
            Err(ParamError::HostRefused { code }) => {
                self.finish(Err(OpError::HostRefused { code }));
            }
            Err(e) => {
                log::warn!("parameter download refused: {e}");
                self.finish(Err(OpError::Params(e)));
            }
        }
    }
}
