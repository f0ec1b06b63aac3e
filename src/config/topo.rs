//! Dependency order of agents and dependency cycles.

use std::collections::{BTreeSet, HashMap};

use super::model::Config;

/// Agent names in start order: every agent after the agents it depends on,
/// ties in file order. Unknown dependencies are ignored; agents caught in a
/// cycle (which a validated config never has) come last, in file order.
pub fn topo_order(cfg: &Config) -> Vec<String> {
    let deps: Vec<Vec<&str>> = cfg
        .agents
        .iter()
        .map(|a| a.depends_on.iter().map(String::as_str).collect())
        .collect();
    let names: Vec<&str> = cfg.agents.iter().map(|a| a.name.as_str()).collect();
    let graph = Graph::new(&names, &deps);
    let (order, stuck) = graph.order();
    order
        .into_iter()
        .chain(stuck)
        .map(|i| names[i].to_owned())
        .collect()
}

/// Agents as numbered nodes; an edge `a → b` means `a` depends on `b`.
pub(crate) struct Graph {
    /// Per node, the nodes it depends on (deduplicated, in the order given).
    deps: Vec<Vec<usize>>,
}

impl Graph {
    /// `deps[i]` are the names node `i` (`names[i]`) depends on; names that
    /// are not nodes, and self-dependencies, are left out.
    pub(crate) fn new(names: &[&str], deps: &[Vec<&str>]) -> Self {
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let deps = (0..names.len())
            .map(|i| {
                let mut out: Vec<usize> = Vec::new();
                for name in deps.get(i).map_or(&[][..], Vec::as_slice) {
                    if let Some(&j) = index.get(name)
                        && j != i
                        && !out.contains(&j)
                    {
                        out.push(j);
                    }
                }
                out
            })
            .collect();
        Self { deps }
    }

    /// Kahn's algorithm, always taking the lowest-numbered ready node.
    /// Returns the order and the nodes that could not be placed (in cycles
    /// or behind one), ascending.
    pub(crate) fn order(&self) -> (Vec<usize>, Vec<usize>) {
        let n = self.deps.len();
        let mut waiting_on: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, deps) in self.deps.iter().enumerate() {
            for &j in deps {
                dependents[j].push(i);
            }
        }
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting_on[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &d in &dependents[i] {
                waiting_on[d] -= 1;
                if waiting_on[d] == 0 {
                    ready.insert(d);
                }
            }
        }
        let stuck = (0..n).filter(|&i| waiting_on[i] > 0).collect();
        (order, stuck)
    }

    /// Dependency cycles, each as its nodes in dependency order starting at
    /// its lowest-numbered node (`[a, b]` means a → b → a). At least one
    /// cycle is reported for every group of nodes that cannot be ordered;
    /// no node is in two reported cycles.
    pub(crate) fn cycles(&self) -> Vec<Vec<usize>> {
        let (_, stuck) = self.order();
        let n = self.deps.len();
        let mut is_stuck = vec![false; n];
        for &i in &stuck {
            is_stuck[i] = true;
        }
        // Every stuck node has a stuck dependency, so following stuck
        // dependencies from a stuck node must come back to a node already on
        // the walk: that closes a cycle.
        let mut seen_in_walk: Vec<Option<usize>> = vec![None; n];
        let mut cycles = Vec::new();
        for &start in &stuck {
            if seen_in_walk[start].is_some() {
                continue;
            }
            let mut path = Vec::new();
            let mut at = start;
            loop {
                if let Some(walk) = seen_in_walk[at] {
                    if walk == start
                        && let Some(pos) = path.iter().position(|&p| p == at)
                    {
                        let mut cycle: Vec<usize> = path[pos..].to_vec();
                        if let Some(low) = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, &v)| v)
                            .map(|(k, _)| k)
                        {
                            cycle.rotate_left(low);
                        }
                        cycles.push(cycle);
                    }
                    break;
                }
                seen_in_walk[at] = Some(start);
                path.push(at);
                match self.deps[at].iter().find(|&&d| is_stuck[d]) {
                    Some(&next) => at = next,
                    None => break,
                }
            }
        }
        cycles.sort();
        cycles
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{
        AgentSpec, BackoffSpec, Config, LimitAction, LogSpec, PathsSpec, PoolSpec, ResourceSpec,
        RestartPolicy, StartLimitSpec,
    };
    use super::*;
    use std::time::Duration;

    fn graph(edges: &[(&str, &[&str])]) -> (Vec<String>, Graph) {
        let names: Vec<&str> = edges.iter().map(|(n, _)| *n).collect();
        let deps: Vec<Vec<&str>> = edges.iter().map(|(_, d)| d.to_vec()).collect();
        (
            names.iter().map(|s| s.to_string()).collect(),
            Graph::new(&names, &deps),
        )
    }

    fn named(names: &[String], idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| names[i].clone()).collect()
    }

    #[test]
    fn orders_dependencies_first_ties_in_file_order() {
        let (names, g) = graph(&[
            ("web", &["api", "db"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("lone", &[]),
        ]);
        let (order, stuck) = g.order();
        assert_eq!(named(&names, &order), ["db", "cache", "api", "web", "lone"]);
        assert!(stuck.is_empty());
        assert!(g.cycles().is_empty());
    }

    #[test]
    fn ignores_unknown_and_self_and_duplicate_deps() {
        let (names, g) = graph(&[("a", &["a", "ghost", "b", "b"]), ("b", &[])]);
        let (order, _) = g.order();
        assert_eq!(named(&names, &order), ["b", "a"]);
        assert!(g.cycles().is_empty());
    }

    #[test]
    fn finds_cycles() {
        let (names, g) = graph(&[
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("d", &["a"]), // behind a cycle, not in it
            ("e", &["f"]),
            ("f", &["e"]),
            ("g", &[]),
        ]);
        let (order, stuck) = g.order();
        assert_eq!(named(&names, &order), ["g"]);
        assert_eq!(named(&names, &stuck), ["a", "b", "c", "d", "e", "f"]);
        let cycles: Vec<Vec<String>> = g.cycles().iter().map(|c| named(&names, c)).collect();
        assert_eq!(cycles, [vec!["a", "b", "c"], vec!["e", "f"]]);
    }

    #[test]
    fn cycle_starts_at_lowest_node() {
        let (names, g) = graph(&[("x", &["z"]), ("y", &["x"]), ("z", &["y"])]);
        let cycles: Vec<Vec<String>> = g.cycles().iter().map(|c| named(&names, c)).collect();
        assert_eq!(cycles, [vec!["x", "z", "y"]]);
        // Reached from a node outside the cycle.
        let (names, g) = graph(&[("w", &["y"]), ("x", &["y"]), ("y", &["x"])]);
        let cycles: Vec<Vec<String>> = g.cycles().iter().map(|c| named(&names, c)).collect();
        assert_eq!(cycles, [vec!["x", "y"]]);
    }

    fn agent(name: &str, deps: &[&str]) -> AgentSpec {
        AgentSpec {
            name: name.into(),
            command: vec!["true".into()],
            cwd: None,
            env: Default::default(),
            inherit_env: vec![],
            replicas: 1,
            restart: RestartPolicy::Always,
            backoff: BackoffSpec {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
                multiplier: 2.0,
                jitter: 0.1,
                reset_after: Duration::from_secs(60),
            },
            min_uptime: Duration::from_secs(1),
            start_limit: StartLimitSpec {
                burst: 5,
                interval: Duration::from_secs(10),
            },
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            restore_latest: false,
            resources: ResourceSpec {
                cpu: 0.0,
                memory: 0,
                memory_limit: None,
                memory_limit_action: LimitAction::Restart,
            },
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            tasks: None,
            description: None,
            autoscale: None,
            health: None,
            tty: None,
            attention: Vec::new(),
            workspace: None,
        }
    }

    #[test]
    fn topo_order_of_a_config() {
        let mut cfg = Config {
            console: Default::default(),
            metrics: Default::default(),
            alerts: Vec::new(),
            notifiers: Vec::new(),
            backup: Default::default(),
            tasks: Default::default(),
            gateway: Default::default(),
            hosts: Vec::new(),
            source: None,
            agents: vec![
                agent("researcher", &["planner", "memory"]),
                agent("planner", &[]),
                agent("memory", &[]),
                agent("critic", &["researcher"]),
            ],
            pool: PoolSpec {
                cpu: 4.0,
                memory: 1 << 30,
                max_agents: 10,
            },
            paths: PathsSpec::default(),
            logs: LogSpec::default(),
        };
        assert_eq!(
            topo_order(&cfg),
            ["planner", "memory", "researcher", "critic"]
        );
        // A hand-built cyclic config still lists every agent once.
        cfg.agents[1].depends_on = vec!["critic".into()];
        assert_eq!(
            topo_order(&cfg),
            ["memory", "researcher", "planner", "critic"]
        );
    }
}
