//! Agents' context dirs, made ahead of the spawns that run in them.
//!
//! A directory is the one thing a first start of hundreds of agents
//! creates for each agent, and on an ext4 without a journal (which skips
//! inodes freed in the last minutes, reading their inode blocks) each one
//! costs 30-350 µs of CPU. Made on the actor, they held up every spawn;
//! made beside the spawns, they took CPU from the agents starting on a
//! machine the start keeps busy. So the daemon's start begins them
//! ([`Early::begin`]), on a thread of their own, as soon as the data dir
//! is locked: they are made while the state database, the audit trail and
//! the supervisor are opened on the other core, before the first spawn.
//! A reload that adds agents makes theirs the same way
//! ([`super::actor::Actor::prepare_contexts`]).
//!
//! Each agent has a flag: [`UNKNOWN`] (a spawn makes the dir itself),
//! [`PENDING`] (being made ahead) or [`MADE`] (made for the next spawn,
//! or there at the last spawn, which ran in it: the next one, a restart
//! say, then skips the `mkdir`, 10-40 µs on its way; should the dir be
//! gone by then, removed by hand, the spawn fails on its working dir and
//! is tried again once after making it). A spawn that comes first makes
//! its own and resets the flag, and the late mark is void.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::Layout;
use crate::config::Config;

pub(super) const UNKNOWN: u8 = 0;
pub(super) const PENDING: u8 = 1;
pub(super) const MADE: u8 = 2;

/// An agent's context flag, shared with the thread making its dir.
pub type Flag = Arc<AtomicU8>;

/// The context dirs the daemon's start is making, by agent.
#[derive(Default)]
pub struct Early {
    flags: HashMap<String, Flag>,
}

impl Early {
    /// Starts making the context dirs of the configured agents that will
    /// start in them (replicas wanted, no `cwd`, no workspace), in fleet
    /// order, on a thread of its own. The stored state may yet say an
    /// agent stays stopped: its dir is then made for nothing, once.
    pub fn begin(layout: &Layout, cfg: &Config) -> Early {
        let wanted: Vec<(String, PathBuf, Flag)> = cfg
            .agents
            .iter()
            .filter(|a| a.replicas > 0 && a.cwd.is_none() && a.workspace.is_none())
            .map(|a| {
                let flag = Arc::new(AtomicU8::new(PENDING));
                (a.name.clone(), layout.context_dir(&a.name), flag)
            })
            .collect();
        if wanted.is_empty() {
            return Early::default();
        }
        let flags = wanted
            .iter()
            .map(|(name, _, flag)| (name.clone(), flag.clone()))
            .collect();
        let todo: Vec<(PathBuf, Flag)> = wanted.into_iter().map(|(_, d, f)| (d, f)).collect();
        let started = std::thread::Builder::new()
            .name("autonomos-contexts".into())
            .spawn(move || make(todo));
        match started {
            Ok(_) => Early { flags },
            // Each spawn makes its own.
            Err(_) => Early::default(),
        }
    }

    /// The flag of `agent`'s dir, if the start is making it.
    pub(super) fn take(&mut self, agent: &str) -> Option<Flag> {
        self.flags.remove(agent)
    }
}

/// Makes each dir and marks it made, unless a spawn got there first (the
/// flag is no longer [`PENDING`]). Only the dir itself: its parent is the
/// data dir's (made at the start), and a data dir removed meanwhile (a
/// start that failed, a test cleaning up) is not made again. On an error
/// the spawn tries again, and names it.
pub(super) fn make(todo: Vec<(PathBuf, Flag)>) {
    for (dir, made) in todo {
        if made.load(Ordering::Acquire) != PENDING {
            continue;
        }
        let there = match std::fs::create_dir(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => dir.is_dir(),
            Err(_) => false,
        };
        if there {
            let _ = made.compare_exchange(PENDING, MADE, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let host = crate::config::HostFacts {
            cpus: 2.0,
            memory: 1 << 30,
        };
        crate::config::load_str(text, None, &host).expect("valid")
    }

    fn wait_made(flag: &Flag) {
        let t = std::time::Instant::now();
        while flag.load(Ordering::Acquire) == PENDING {
            assert!(t.elapsed().as_secs() < 10, "never made");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn the_start_makes_the_dirs_of_the_agents_that_start_in_them_and_only_those() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let elsewhere = dir.path().join("elsewhere");
        let cfg = config(&format!(
            r#"
[agents.a]
command = ["true"]
[agents.b]
command = ["true"]
replicas = 2
[agents.none]
command = ["true"]
replicas = 0
[agents.own]
command = ["true"]
cwd = "{}"
"#,
            elsewhere.display()
        ));
        crate::daemon::prepare_data_dir(&data).expect("data dir");
        let layout = Layout::new(data.clone());
        let mut early = Early::begin(&layout, &cfg);
        for name in ["a", "b"] {
            let flag = early.take(name).expect(name);
            wait_made(&flag);
            assert_eq!(flag.load(Ordering::Acquire), MADE, "{name}");
            assert!(data.join("contexts").join(name).is_dir(), "{name}");
        }
        assert!(early.take("none").is_none() && early.take("own").is_none());
        assert!(!data.join("contexts/none").exists());
        assert!(!data.join("contexts/own").exists() && !elsewhere.exists());
    }

    /// The supervisor takes the marks of the agents about to start, and
    /// leaves an agent the state keeps stopped to make its own dir.
    #[tokio::test]
    async fn the_supervisor_takes_the_marks_of_the_agents_about_to_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        crate::daemon::prepare_data_dir(&data).expect("data dir");
        let cfg = config("[agents.a]\ncommand = [\"true\"]\n[agents.b]\ncommand = [\"true\"]\n");
        let layout = Layout::new(data.clone());
        let early = Early::begin(&layout, &cfg);
        let health = crate::daemon::health::Health::default();
        let (store, _) =
            crate::daemon::store::Store::start(&layout.state_db(), health).expect("store");
        let mut loaded = crate::daemon::store::Loaded::default();
        let stopped = crate::daemon::store::AgentRow {
            desired: 1,
            config_replicas: 1,
            enabled: false,
        };
        loaded.agents.insert("b".into(), stopped);
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let services = super::super::Services {
            contexts: early,
            ..Default::default()
        };
        let actor = super::super::actor::Actor::new(cfg, layout, store, &loaded, tx, services)
            .expect("actor");
        let (a, b) = (&actor.agents[0], &actor.agents[1]);
        assert_eq!((a.spec.name.as_str(), b.spec.name.as_str()), ("a", "b"));
        wait_made(&a.context_made);
        assert_eq!(a.context_made.load(Ordering::Acquire), MADE);
        let t = std::time::Instant::now();
        while !data.join("contexts/b").is_dir() {
            assert!(t.elapsed().as_secs() < 10, "b's dir never made");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(b.context_made.load(Ordering::Acquire), UNKNOWN);
    }

    #[test]
    fn a_dir_a_spawn_made_first_or_that_cannot_be_made_is_not_marked_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = dir.path().join("first");
        // A spawn came first: it reset the flag (and made its own dir).
        let taken: Flag = Arc::new(AtomicU8::new(UNKNOWN));
        // Its parent is a file: no dir can be made there.
        std::fs::write(dir.path().join("file"), "").expect("file");
        let blocked = dir.path().join("file/ctx");
        let failing: Flag = Arc::new(AtomicU8::new(PENDING));
        // A data dir removed meanwhile is not made again.
        let orphan = dir.path().join("gone/contexts/a");
        let orphaned: Flag = Arc::new(AtomicU8::new(PENDING));
        let ok = dir.path().join("ok");
        let made: Flag = Arc::new(AtomicU8::new(PENDING));
        make(vec![
            (first.clone(), taken.clone()),
            (blocked, failing.clone()),
            (orphan, orphaned.clone()),
            (ok.clone(), made.clone()),
        ]);
        assert_eq!(orphaned.load(Ordering::Acquire), PENDING);
        assert!(!dir.path().join("gone").exists());
        assert_eq!(taken.load(Ordering::Acquire), UNKNOWN);
        assert!(!first.exists(), "a dir a spawn saw to is left to it");
        assert_eq!(failing.load(Ordering::Acquire), PENDING);
        assert_eq!(made.load(Ordering::Acquire), MADE);
        assert!(ok.is_dir());
    }
}
