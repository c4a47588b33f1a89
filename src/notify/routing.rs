//! Where a license's alerts go (SPEC section 5a): its plain recipients and channels, its
//! escalation steps' channels, and who must hear of a recovery. The sweep resolves these into
//! outbox targets, one row per (event, target): an e-mail channel becomes one target per
//! address (so an address reached twice gets one e-mail), an HTTP channel one target.

use crate::{
    domain::channel::{ChannelConfig, ChannelKind},
    store::{
        notifications::{Candidate, Target},
        outbox::ChannelRow,
    },
};
use std::collections::HashMap;
use uuid::Uuid;

/// The channels of the tenants in one sweep, by (tenant, channel).
#[derive(Debug, Default)]
pub struct Routing {
    channels: HashMap<(Uuid, Uuid), ChannelConfig>,
}

impl Routing {
    pub fn new(rows: Vec<ChannelRow>) -> Self {
        let channels = rows
            .into_iter()
            .filter_map(|(tenant, id, _name, kind, config)| {
                let config = ChannelConfig::from_stored(ChannelKind::parse(&kind)?, &config.0)?;
                Some(((tenant, id), config))
            })
            .collect();
        Self { channels }
    }

    /// The targets of `channels` of the candidate's tenant, and its plain recipients if
    /// `plain`; without duplicates. A channel deleted meanwhile is skipped.
    pub fn targets(&self, c: &Candidate, channels: &[Uuid], plain: bool) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        let mut push = |t: Target| {
            if !out.iter().any(|o| o.recipient == t.recipient) {
                out.push(t);
            }
        };
        if plain {
            for to in &c.recipients {
                push(Target {
                    recipient: to.clone(),
                    channel_id: None,
                    channel_kind: "email",
                });
            }
        }
        for id in channels {
            match self.channels.get(&(c.tenant_id, *id)) {
                Some(ChannelConfig::Email { recipients }) => {
                    for to in recipients {
                        push(Target {
                            recipient: to.as_str().to_owned(),
                            channel_id: Some(*id),
                            channel_kind: "email",
                        });
                    }
                }
                Some(config) => push(Target {
                    recipient: id.to_string(),
                    channel_id: Some(*id),
                    channel_kind: config.kind().as_str(),
                }),
                None => {}
            }
        }
        out
    }

    /// The license's own targets: plain recipients and channels.
    pub fn base(&self, c: &Candidate) -> Vec<Target> {
        self.targets(c, &c.channels, true)
    }

    /// The channels of escalation step `step` (1-based).
    pub fn step(&self, c: &Candidate, step: i32) -> Vec<Target> {
        let index = usize::try_from(step - 1).unwrap_or(usize::MAX);
        c.escalation
            .0
            .get(index)
            .map(|s| self.targets(c, &s.channels, false))
            .unwrap_or_default()
    }

    /// Who hears that an episode closed: everybody it was sent to (the license's targets and
    /// the escalation steps decided so far) if `notify`; and whatever `notify` says, every
    /// PagerDuty channel among them, because an incident PagerDuty opened stays open until it
    /// is resolved.
    pub fn recovery(&self, c: &Candidate, notify: bool) -> Vec<Target> {
        let mut all = self.base(c);
        for step in 1..=c.escalated.unwrap_or(0) {
            for t in self.step(c, step) {
                if !all.iter().any(|o| o.recipient == t.recipient) {
                    all.push(t);
                }
            }
        }
        if !notify {
            all.retain(|t| t.channel_kind == ChannelKind::Pagerduty.as_str());
        }
        all
    }
}
