//! The console's replicated model: what the daemon told us, plus what the
//! operator is doing (focus, selection, filter, input modes, notices).
//! Plain data; `update` changes it, views only read it.

use std::collections::{BTreeSet, VecDeque};

use crate::core::lifecycle::Millis;
use crate::proto::{AgentStatus, FleetStatus, LogLine, ReplicaStatus};

/// Points kept per graph series (at one sample a second: 10 minutes).
pub const HISTORY_POINTS: usize = 600;
/// Log lines kept for the selected agent.
pub const LOG_LINES: usize = 2000;
/// Notices kept.
pub const NOTICES: usize = 50;
/// Notices longer than this may not fit the footer: they show whole in a
/// box until dismissed.
pub const MESSAGE_CHARS: usize = 70;

/// The panels, in Tab order; digits 1-7 jump to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Panel {
    Fleet,
    Graphs,
    Detail,
    Alerts,
    Incidents,
    Logs,
    Diagnostics,
    Tasks,
}

impl Panel {
    pub const ALL: [Panel; 8] = [
        Panel::Fleet,
        Panel::Graphs,
        Panel::Detail,
        Panel::Alerts,
        Panel::Incidents,
        Panel::Logs,
        Panel::Diagnostics,
        Panel::Tasks,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Panel::Fleet => "Fleet",
            Panel::Graphs => "Graphs",
            Panel::Detail => "Agent",
            Panel::Alerts => "Alerts",
            Panel::Incidents => "Incidents",
            Panel::Logs => "Logs",
            Panel::Diagnostics => "Diagnostics",
            Panel::Tasks => "Tasks",
        }
    }

    pub fn number(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0) + 1
    }
}

/// An agent of another host, as the fleet table lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ElsewhereAgent {
    pub host: String,
    pub name: String,
    pub running: u32,
    pub desired: u32,
    pub state: String,
    pub cpu: f64,
    pub rss: u64,
    pub restarts: u64,
}

impl ElsewhereAgent {
    pub fn of(host: &str, a: &crate::proto::AgentStatus) -> ElsewhereAgent {
        ElsewhereAgent {
            host: host.to_string(),
            name: a.name.clone(),
            running: a.running,
            desired: a.desired,
            state: crate::proto::agent_state(a),
            cpu: a.replicas.iter().map(|r| r.cpu_percent).sum(),
            rss: a.replicas.iter().map(|r| r.rss_bytes).sum(),
            restarts: a.replicas.iter().map(|r| r.restarts).sum(),
        }
    }
}

/// One host of a multi-host console, as its bar shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBadge {
    pub name: String,
    /// Attached now.
    pub up: bool,
    /// Why not, when not ("reconnecting", "stopped").
    pub state: String,
    pub running: u32,
    pub desired: u32,
    pub firing: usize,
    pub waiting: usize,
}

impl HostBadge {
    /// A host's badge from its model.
    pub fn of(name: &str, m: &Model) -> HostBadge {
        let (up, state) = match &m.conn {
            Conn::Attached { .. } => (true, String::new()),
            Conn::Connecting => (false, "connecting".into()),
            Conn::Reconnecting { attempts, .. } => (false, format!("unreachable ({attempts})")),
            Conn::Stopping => (false, "stopping".into()),
            Conn::Stopped { .. } => (false, "stopped".into()),
        };
        let s = m.status.as_ref();
        let agents = s.map(|s| s.agents.as_slice()).unwrap_or_default();
        HostBadge {
            name: name.to_string(),
            up,
            state,
            running: agents.iter().map(|a| a.running).sum(),
            desired: agents.iter().map(|a| a.desired).sum(),
            firing: s.map_or(0, |s| {
                s.alerts.iter().filter(|a| a.state == "firing").count()
            }),
            waiting: agents
                .iter()
                .flat_map(|a| &a.replicas)
                .filter(|r| r.attention == Some(crate::proto::Attention::WaitingInput))
                .count(),
        }
    }
}

/// The connection, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    Connecting,
    Attached {
        host: String,
        pid: u32,
        version: String,
    },
    Reconnecting {
        error: String,
        attempts: u32,
    },
    /// The daemon said it is shutting down (the fleet is being stopped).
    Stopping,
    /// The daemon shut down as asked: nothing runs. The console tries to
    /// attach again quietly, in case it is started again.
    Stopped {
        at: Millis,
    },
}

impl Conn {
    /// What leaving the console means now, said when it ends.
    pub fn farewell(&self) -> &'static str {
        match self {
            Conn::Attached { .. } | Conn::Connecting => "detached; the fleet keeps running",
            Conn::Reconnecting { .. } => {
                "detached while the daemon was unreachable; its fleet was not changed from here"
            }
            Conn::Stopping => {
                "detached while the daemon was shutting down: its agents are being stopped"
            }
            Conn::Stopped { .. } => "the daemon is stopped: no agent is running",
        }
    }
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// `/` in the fleet: typing a filter.
    Filter,
    /// `/` in the logs: typing a search.
    Search,
    /// `:` the command palette, with its input.
    Palette(String),
    /// A destructive action waiting for y/n.
    Confirm {
        prompt: String,
        request: crate::proto::Request,
    },
    /// `?`
    Help,
    /// `D`: the System Health Check's report (scrolls with `help_page`).
    Doctor,
    /// `i`: keys go to the selected `tty` replica until the leave key.
    Focus,
}

/// How long a `+`/`-` scale waits before it is sent: long enough to see
/// the new count and take it back with Esc.
pub const SCALE_DELAY_MS: Millis = 3000;

/// A scale typed with `+`/`-`, shown and sent when its delay is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingScale {
    pub agent: String,
    pub from: u32,
    pub to: u32,
    pub due: Millis,
}

/// Fleet sort order (`o` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    Cpu,
    Memory,
    Restarts,
    State,
}

impl Sort {
    pub fn next(self) -> Sort {
        match self {
            Sort::Name => Sort::Cpu,
            Sort::Cpu => Sort::Memory,
            Sort::Memory => Sort::Restarts,
            Sort::Restarts => Sort::State,
            Sort::State => Sort::Name,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Cpu => "cpu",
            Sort::Memory => "memory",
            Sort::Restarts => "restarts",
            Sort::State => "state",
        }
    }
}

/// A short message at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub at: Millis,
    pub text: String,
    pub error: bool,
}

/// One row of the fleet table: an agent, or one of its replicas (expanded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Agent(usize),
    Replica(usize, usize),
}

/// A time series: (ms since epoch, value).
pub type Series = VecDeque<(Millis, f64)>;

/// The minute being averaged: (start, sum, count).
pub type Minute = Option<(Millis, f64, u32)>;

/// Points of the 24-hour view: one a minute.
pub const DAY_POINTS: usize = 24 * 60;
pub const DAY_STEP_MS: Millis = 60_000;

/// Adds a sample to the 24-hour view: averaged per minute.
pub fn push_day(series: &mut Series, acc: &mut Minute, at: Millis, v: f64) {
    let bucket = at - at % DAY_STEP_MS;
    match acc {
        Some((b, sum, n)) if *b == bucket => {
            *sum += v;
            *n += 1;
        }
        _ => {
            if let Some((b, sum, n)) = acc.take() {
                if series.len() == DAY_POINTS {
                    series.pop_front();
                }
                series.push_back((b, sum / f64::from(n.max(1))));
            }
            *acc = Some((bucket, v, 1));
        }
    }
}

pub fn push(series: &mut Series, at: Millis, v: f64) {
    if series.len() == HISTORY_POINTS {
        series.pop_front();
    }
    series.push_back((at, v));
}

/// What the Tasks panel shows and keeps.
#[derive(Debug, Clone, Default)]
pub struct TaskView {
    /// Whose tasks `list` holds.
    pub agent: Option<String>,
    /// Newest first.
    pub list: Vec<crate::proto::TaskStatus>,
    pub selected: usize,
    /// The selected task in full (input and result), after Enter.
    pub detail: Option<crate::proto::TaskStatus>,
    /// When the list was last asked for.
    pub asked_at: Millis,
    /// Per agent: tasks waiting, tasks finished per second.
    pub queue: std::collections::HashMap<String, Series>,
    pub rate: std::collections::HashMap<String, Series>,
    /// Per agent: finished tasks so far (completed + failed), the last
    /// 10 s of ticks, for the rate.
    pub done: std::collections::HashMap<String, Series>,
}

/// Everything the console draws from.
#[derive(Debug, Clone)]
pub struct Model {
    /// With several hosts: each one at a glance, for the host bar (empty
    /// with one), and which of them this model is.
    pub hosts: Vec<HostBadge>,
    pub host_index: usize,
    /// The other hosts' live alerts and open incidents (several hosts),
    /// shown under this host's in one feed; read-only here.
    pub elsewhere_alerts: Vec<(String, crate::proto::AlertStatus)>,
    /// The other hosts' agents, a row each under this host's (read-only).
    pub elsewhere_agents: Vec<ElsewhereAgent>,
    pub elsewhere_incidents: Vec<(String, crate::proto::IncidentStatus)>,
    pub status: Option<FleetStatus>,
    pub seq: u64,
    pub conn: Conn,
    /// `user@host` when attached over ssh.
    pub remote: Option<String>,
    pub now: Millis,
    pub focus: Panel,
    pub mode: Mode,
    pub selected: usize,
    pub expanded: BTreeSet<String>,
    pub sort: Sort,
    pub filter: String,
    /// The selected agent's log search.
    pub search: String,
    /// Each other agent's log search, kept while another is selected.
    pub searches: std::collections::HashMap<String, String>,
    /// Only log lines that match the search are shown.
    pub log_filter: bool,
    /// The log line `n`/`N` moved to (an index into `logs`).
    pub search_hit: Option<usize>,
    /// Long log lines wrap instead of being cut.
    pub log_wrap: bool,
    /// A `+`/`-` scale waiting for its delay.
    pub pending_scale: Option<PendingScale>,
    /// The help overlay's page (small terminals page it).
    pub help_page: usize,
    /// The last `doctor` report (None while it runs).
    pub doctor: Option<Vec<crate::core::doctor::Check>>,
    /// The terminal of the `tty` replica in view, as last received.
    pub term: Option<crate::proto::Screen>,
    /// Why the last screen request failed.
    pub term_error: Option<String>,
    /// A screen request is on its way (sent at `term_asked`).
    pub term_pending: bool,
    pub term_asked: Millis,
    /// The terminal view's inner size (rows, cols) as last drawn.
    pub term_area: std::cell::Cell<(u16, u16)>,
    /// The size last asked of the focused replica's terminal.
    pub term_sized: Option<(String, u32, u16, u16)>,
    /// The selected replica's worktree: (agent, replica, branch, changes),
    /// asked for every few seconds while its detail shows.
    pub worktree: Option<(String, u32, String, String)>,
    pub worktree_asked: Millis,
    /// Keys typed in focus mode not sent yet: one send is in flight at a
    /// time, so they arrive in order.
    pub term_input: String,
    pub term_sending: bool,
    /// The replica focus mode types into, fixed when `i` was pressed (a
    /// fleet that changes meanwhile never redirects keys).
    pub focus_target: Option<(String, u32)>,
    /// The input hold to give back once the send in flight is answered.
    pub term_release: Option<(String, u32)>,
    /// A message too long for the footer, shown whole until dismissed.
    pub message: Option<Notice>,
    /// Selected agent's output, oldest first.
    pub logs: VecDeque<LogLine>,
    pub logs_agent: Option<String>,
    pub log_cursor: Option<u64>,
    /// Lines scrolled up from the bottom; 0 follows.
    pub log_scroll: usize,
    pub alert_selected: usize,
    pub incident_selected: usize,
    pub host_cpu: Series,
    pub host_mem: Series,
    /// Bytes per second, received and sent.
    pub net_rx: Series,
    pub net_tx: Series,
    pub cores: Vec<Series>,
    /// Per agent name: (cpu %, rss bytes).
    pub agent_cpu: std::collections::HashMap<String, Series>,
    pub agent_mem: std::collections::HashMap<String, Series>,
    /// The last 24 hours of host CPU and memory %, a point a minute, and
    /// the minute being filled: (start, sum, count).
    pub day_cpu: Series,
    pub day_mem: Series,
    pub day_acc: (Minute, Minute),
    /// The host graphs show the last 24 hours instead of 5 minutes.
    pub day_view: bool,
    pub notices: VecDeque<Notice>,
    /// The Tasks panel: the selected task agent's newest tasks, the one
    /// selected, and its whole record once asked for.
    pub tasks: TaskView,
    /// Set by `q` (detach) or after a confirmed shutdown.
    pub quit: bool,
    /// Something changed since the last frame.
    pub dirty: bool,
}

impl Model {
    pub fn new(now: Millis) -> Model {
        Model {
            hosts: Vec::new(),
            host_index: 0,
            elsewhere_alerts: Vec::new(),
            elsewhere_agents: Vec::new(),
            elsewhere_incidents: Vec::new(),
            status: None,
            seq: 0,
            conn: Conn::Connecting,
            remote: None,
            now,
            focus: Panel::Fleet,
            mode: Mode::Normal,
            selected: 0,
            expanded: BTreeSet::new(),
            sort: Sort::Name,
            filter: String::new(),
            search: String::new(),
            searches: Default::default(),
            log_filter: false,
            search_hit: None,
            log_wrap: false,
            pending_scale: None,
            help_page: 0,
            doctor: None,
            term: None,
            term_error: None,
            term_pending: false,
            term_asked: 0,
            term_area: std::cell::Cell::new((0, 0)),
            term_sized: None,
            worktree: None,
            worktree_asked: 0,
            term_input: String::new(),
            term_sending: false,
            focus_target: None,
            term_release: None,
            message: None,
            logs: VecDeque::new(),
            logs_agent: None,
            log_cursor: None,
            log_scroll: 0,
            alert_selected: 0,
            incident_selected: 0,
            host_cpu: Series::new(),
            host_mem: Series::new(),
            net_rx: Series::new(),
            net_tx: Series::new(),
            cores: Vec::new(),
            agent_cpu: Default::default(),
            agent_mem: Default::default(),
            day_cpu: Series::new(),
            day_mem: Series::new(),
            day_acc: (None, None),
            day_view: false,
            notices: VecDeque::new(),
            tasks: TaskView::default(),
            quit: false,
            dirty: true,
        }
    }

    pub fn agents(&self) -> &[AgentStatus] {
        self.status
            .as_ref()
            .map(|s| s.agents.as_slice())
            .unwrap_or(&[])
    }

    /// Agent indexes in display order (filtered, sorted).
    pub fn visible_agents(&self) -> Vec<usize> {
        let agents = self.agents();
        let f = self.filter.to_lowercase();
        let mut v: Vec<usize> = (0..agents.len())
            .filter(|&i| {
                f.is_empty()
                    || agents[i].name.to_lowercase().contains(&f)
                    || crate::proto::agent_state(&agents[i]).contains(&f)
            })
            .collect();
        let cpu = |a: &AgentStatus| a.replicas.iter().map(|r| r.cpu_percent).sum::<f64>();
        let mem = |a: &AgentStatus| a.replicas.iter().map(|r| r.rss_bytes).sum::<u64>();
        let restarts = |a: &AgentStatus| a.replicas.iter().map(|r| r.restarts).sum::<u64>();
        match self.sort {
            Sort::Name => {}
            Sort::Cpu => v.sort_by(|&a, &b| cpu(&agents[b]).total_cmp(&cpu(&agents[a]))),
            Sort::Memory => v.sort_by_key(|&a| std::cmp::Reverse(mem(&agents[a]))),
            Sort::Restarts => v.sort_by_key(|&a| std::cmp::Reverse(restarts(&agents[a]))),
            Sort::State => v.sort_by_key(|&a| crate::proto::agent_state(&agents[a])),
        }
        v
    }

    /// The fleet table's rows: agents, and replicas under expanded agents.
    pub fn rows(&self) -> Vec<Row> {
        let agents = self.agents();
        let mut rows = Vec::new();
        for i in self.visible_agents() {
            rows.push(Row::Agent(i));
            if self.expanded.contains(&agents[i].name) {
                rows.extend((0..agents[i].replicas.len()).map(|r| Row::Replica(i, r)));
            }
        }
        rows
    }

    /// The selected agent (the agent of a selected replica row too).
    pub fn selected_agent(&self) -> Option<&AgentStatus> {
        let rows = self.rows();
        match rows.get(self.selected.min(rows.len().saturating_sub(1)))? {
            Row::Agent(i) | Row::Replica(i, _) => self.agents().get(*i),
        }
    }

    /// The selected replica: the replica row, or an agent's first replica.
    pub fn selected_replica(&self) -> Option<&ReplicaStatus> {
        let rows = self.rows();
        match rows.get(self.selected.min(rows.len().saturating_sub(1)))? {
            Row::Agent(i) => self.agents().get(*i)?.replicas.first(),
            Row::Replica(i, r) => self.agents().get(*i)?.replicas.get(*r),
        }
    }

    /// The `tty` replica whose terminal is in view: the selected one
    /// (replica 0 for an agent row) while the detail has focus, or in
    /// focus mode.
    pub fn term_target(&self) -> Option<(String, u32)> {
        if self.mode == Mode::Focus {
            return self.focus_target.clone();
        }
        if self.focus != Panel::Detail {
            return None;
        }
        let a = self.selected_agent()?;
        a.tty?;
        let r = self.selected_replica_index().unwrap_or(0);
        Some((a.name.clone(), r))
    }

    /// Replicas waiting for a person, fleet-wide.
    pub fn waiting_input(&self) -> usize {
        self.agents()
            .iter()
            .flat_map(|a| &a.replicas)
            .filter(|r| r.attention == Some(crate::proto::Attention::WaitingInput))
            .count()
    }

    /// The replica index a selected replica row names.
    pub fn selected_replica_index(&self) -> Option<u32> {
        let rows = self.rows();
        match rows.get(self.selected)? {
            Row::Replica(i, r) => self.agents().get(*i)?.replicas.get(*r).map(|x| x.index),
            Row::Agent(_) => None,
        }
    }

    pub fn notify(&mut self, text: impl Into<String>, error: bool) {
        if self.notices.len() == NOTICES {
            self.notices.pop_front();
        }
        let n = Notice {
            at: self.now,
            text: text.into(),
            error,
        };
        if n.text.chars().count() > MESSAGE_CHARS {
            self.message = Some(n.clone());
        }
        self.notices.push_back(n);
        self.dirty = true;
    }
}
