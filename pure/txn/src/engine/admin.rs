//! Administrative commands: sign-in (the working keys it delivers), sign-off and echo. They
//! carry no MAC and go out without draining pending items; the counters are committed before
//! the request leaves, so no STAN is handed out twice.

use super::types::Op;
use super::{Engine, EngineConfig, OpError, Outcome, State};
use crate::journal::JournalOp;
use crate::model::Now;
use crate::proto::{self, Ctx, MsgType, Reply};
use smartpos_crypto::keys::TdesKey;
use smartpos_crypto::module::{ModuleError, SecurityModule};
use smartpos_iso8583::ResponseCode;

/// The working keys delivered at sign-in. Zeroized on drop (by [`TdesKey`]).
#[derive(Debug)]
pub struct WorkingKeys {
    /// PIN encryption key.
    pub pik: TdesKey,
    /// MAC key.
    pub mak: TdesKey,
    /// Track/data encryption key, when delivered.
    pub tdk: Option<TdesKey>,
}

/// Parses and unwraps a sign-in key block (field 62): PIK(16) CV(4) MAK(16) CV(4) [TDK(16) CV(4)],
/// each key encrypted under the TMK and checked against its check value.
pub fn unwrap_key_block(tmk: &TdesKey, block: &[u8]) -> Result<WorkingKeys, OpError> {
    if block.len() != 40 && block.len() != 60 {
        return Err(OpError::KeyBlock {
            reason: "key block must be 40 or 60 bytes",
        });
    }
    let part = |i: usize| -> Result<TdesKey, OpError> {
        let start = i * 20;
        let enc = block.get(start..start + 16).ok_or(OpError::KeyBlock {
            reason: "key block truncated",
        })?;
        let cv = block.get(start + 16..start + 20).ok_or(OpError::KeyBlock {
            reason: "key block truncated",
        })?;
        smartpos_crypto::keys::unwrap_working_key(tmk, enc, cv).map_err(|_| OpError::KeyCheck)
    };
    Ok(WorkingKeys {
        pik: part(0)?,
        mak: part(1)?,
        tdk: if block.len() == 60 {
            Some(part(2)?)
        } else {
            None
        },
    })
}

/// Installs a sign-in's key block (as kept in the journal) into the security module: the
/// module decrypts every key under the master key and checks its check value.
pub(super) fn install_keys(
    cfg: &EngineConfig,
    module: &dyn SecurityModule,
    block: &[u8],
) -> Result<(), OpError> {
    let delivery = cfg.profile.keys.delivery(block, cfg.master_key_index)?;
    module.install_working_keys(&delivery).map_err(|e| match e {
        ModuleError::KeyCheck { .. } => OpError::KeyCheck,
        ModuleError::BadDelivery { reason, .. } => OpError::KeyBlock { reason },
        other => OpError::SecurityModule {
            reason: other.to_string(),
        },
    })
}

impl Engine {
    /// Signs in and downloads working keys.
    pub fn start_sign_in(&mut self, now: Now, operator: &str) {
        self.begin(
            now,
            Op::SignIn {
                operator: operator.to_owned(),
            },
        );
    }

    /// Signs off.
    pub fn start_sign_off(&mut self, now: Now) {
        self.begin(now, Op::SignOff);
    }

    /// Sends an echo test.
    pub fn start_echo(&mut self, now: Now) {
        self.begin(now, Op::Echo);
    }

    /// Sends the sign-in, sign-off or echo request.
    pub(super) fn admin_send(&mut self, now: Now) {
        let (msg, operator) = match self.op() {
            Some(Op::SignIn { operator }) => (MsgType::SignIn, Some(operator.clone())),
            Some(Op::SignOff) => (MsgType::SignOff, None),
            Some(Op::Echo) => (MsgType::Echo, None),
            _ => return,
        };
        let stan = self.counters.next_stan();
        let ctx = Ctx {
            stan,
            batch: self.counters.batch,
            operator: operator.as_deref(),
            ..Ctx::default()
        };
        self.admin(now, msg, &ctx);
    }

    /// Commits the counters, then sends an administrative request (no MAC).
    pub(super) fn admin(&mut self, now: Now, msg: MsgType, ctx: &Ctx<'_>) {
        let counters = self.counters;
        self.commit(vec![JournalOp::PutCounters(counters)]);
        match proto::build(&self.cfg.profile, &self.cfg.identity, msg, ctx) {
            Ok(m) => {
                self.transmit(now, &m, false, msg, None, |wait| State::ExpectResponse {
                    wait,
                });
            }
            Err(e) => self.finish(Err(OpError::Proto(e.to_string()))),
        }
    }

    /// The answer to a sign-in: unwraps and installs the working keys.
    pub(super) fn sign_in_reply(&mut self, reply: Reply) {
        if reply.response_code != ResponseCode::APPROVED {
            self.finish(Err(OpError::HostRefused {
                code: reply.response_code.to_string(),
            }));
            return;
        }
        if self.cfg.profile.keys.dukpt().is_some() {
            // DUKPT: the sign-in delivers no keys (they are derived per transaction); it
            // still opens the host's batch.
            self.adopt_host_batch(&reply);
            self.signed_in = true;
            self.commit(vec![JournalOp::PutCounters(self.counters)]);
            let batch = self.counters.batch;
            self.finish(Ok(Outcome::SignedIn { batch }));
            return;
        }
        let Some(block) = reply
            .field62
            .as_deref()
            .and_then(|f| self.cfg.profile.decode_key_block(f))
        else {
            self.finish(Err(OpError::KeyBlock {
                reason: "no key block in the response",
            }));
            return;
        };
        match install_keys(&self.cfg, self.module.as_ref(), &block) {
            Ok(()) => {
                self.adopt_host_batch(&reply);
                self.signed_in = true;
                self.commit(vec![
                    JournalOp::PutWrappedKeys { block },
                    JournalOp::PutCounters(self.counters),
                ]);
                let batch = self.counters.batch;
                self.finish(Ok(Outcome::SignedIn { batch }));
            }
            // The module keeps the keys of the previous sign-in when an installation fails.
            Err(e) => self.finish(Err(e)),
        }
    }

    /// The host's batch from a sign-in answer (60.2), adopted only if it is ahead: batch
    /// numbers never repeat.
    fn adopt_host_batch(&mut self, reply: &Reply) {
        let host_batch = reply
            .field60
            .as_deref()
            .and_then(|f| f.get(2..8))
            .and_then(|b| b.parse::<u32>().ok());
        if let Some(hb) = host_batch
            && hb > self.counters.batch
            && self.settlement.is_none()
        {
            self.counters.batch = hb;
        }
    }

    /// The answer to a sign-off or an echo.
    pub(super) fn ack_reply(&mut self, reply: Reply) {
        if reply.response_code == ResponseCode::APPROVED {
            if matches!(self.op(), Some(Op::SignOff)) {
                self.signed_in = false;
            }
            self.finish(Ok(Outcome::Acknowledged));
        } else {
            self.finish(Err(OpError::HostRefused {
                code: reply.response_code.to_string(),
            }));
        }
    }
}
