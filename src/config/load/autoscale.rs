//! An agent's `autoscale = { ... }`: bounds, targets and how decisions are
//! stabilized (see `core::autoscale`).

use super::*;
use crate::core::autoscale::{Spec, Target};

const KEYS: [&str; 13] = [
    "min",
    "max",
    "queue_per_replica",
    "utilization",
    "latency_p95",
    "cpu",
    "tolerance",
    "scale_down_window",
    "cooldown",
    "max_step_up",
    "predict",
    "idle_window",
    "horizon",
];

/// The forecast's horizon when `predict = true`.
const DEFAULT_HORIZON: Duration = Duration::from_secs(60);

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Checker<'_> {
    /// Reads `autoscale` of an agent whose other keys are read (`tasks`
    /// says whether task targets apply).
    pub(super) fn autoscale(&mut self, v: &Value<'_>, table_name: &str, agent: &mut AgentSpec) {
        let name = format!("{table_name}.autoscale");
        let help = Some("write autoscale = { min = 1, max = 8, queue_per_replica = 5 }".to_owned());
        let Some(t) = self.table(
            v,
            Field {
                key: "autoscale",
                table: table_name,
            },
            help,
        ) else {
            return;
        };
        let [
            min,
            max,
            queue,
            util,
            latency,
            cpu,
            tolerance,
            window,
            cooldown,
            step,
            predict,
            idle,
            horizon,
        ] = self.fields(t, &name, KEYS, |k| {
            matches!(k, "target" | "targets" | "queue").then(|| {
                "targets are keys: queue_per_replica, utilization, latency_p95, cpu".to_owned()
            })
        });
        let field = |key| Field { key, table: &name };
        let mut s = Spec::default();
        let most = i128::from(MAX_REPLICAS);
        if let Some((_, v)) = min
            && let Some(n) = self.int_in(v, field("min"), 0, most)
        {
            s.min = n as u32;
        }
        if let Some((_, v)) = max
            && let Some(n) = self.int_in(v, field("max"), 1, most)
        {
            s.max = n as u32;
        }
        let plain = agent.tasks.is_none();
        self.autoscale_targets([queue, util, latency, cpu], &name, plain, &mut s);
        if s.targets.is_empty() && [queue, util, latency, cpu].iter().all(Option::is_none) {
            self.problem(
                v.span(),
                format!("[{name}] has no target"),
                Some("add one or more of queue_per_replica, utilization, latency_p95, cpu".into()),
            );
        }
        self.autoscale_tuning(
            [tolerance, window, cooldown, step, predict, idle, horizon],
            &name,
            plain,
            &mut s,
        );
        if s.min > s.max {
            let at = min.or(max).map_or(v.span(), |(_, v)| v.span());
            self.problem(
                at,
                format!(
                    "`min` ({}) in [{name}] is more than `max` ({})",
                    s.min, s.max
                ),
                None,
            );
            return;
        }
        // `replicas` is the count it starts with, at least `min`.
        agent.replicas = agent.replicas.max(s.min);
        if agent.replicas > s.max {
            self.problem(
                v.span(),
                format!(
                    "`replicas` ({}) of [{table_name}] is more than autoscale's max ({})",
                    agent.replicas, s.max
                ),
                Some("with autoscale, `replicas` is the count it starts with".into()),
            );
            return;
        }
        agent.autoscale = Some(s);
    }

    /// A target's value, unless it measures tasks and the agent is a plain
    /// process (`plain`), which is reported.
    fn target<'a, 'i>(
        &mut self,
        entry: Option<Entry<'a, 'i>>,
        table: &str,
        plain: bool,
    ) -> Option<&'a Value<'i>> {
        let (k, v) = entry?;
        if plain {
            let key: &str = k.get_ref();
            self.problem(
                k.span(),
                format!("`{key}` in [{table}] needs a task agent (it measures the task queue)"),
                Some("add protocol = \"jsonrpc\", or scale on cpu".into()),
            );
            return None;
        }
        Some(v)
    }

    /// The targets of `autoscale`, in the order they are listed in `KEYS`.
    fn autoscale_targets(
        &mut self,
        [queue, util, latency, cpu]: [Option<Entry<'_, '_>>; 4],
        name: &str,
        plain: bool,
        s: &mut Spec,
    ) {
        let field = |key| Field { key, table: name };
        if let Some(v) = self.target(queue, name, plain)
            && let Some(x) = self.number_in(v, field("queue_per_replica"), 0.1, 1e6)
        {
            s.targets.push(Target::QueuePerReplica(x));
        }
        if let Some(v) = self.target(util, name, plain)
            && let Some(x) = self.number_in(v, field("utilization"), 0.05, 1.0)
        {
            s.targets.push(Target::Utilization(x));
        }
        if let Some(v) = self.target(latency, name, plain)
            && let Some(d) = self.duration_max(v, field("latency_p95"), HOUR)
        {
            s.targets
                .push(Target::LatencyP95(d.as_secs_f64().max(0.001)));
        }
        if let Some(v) = self.target(cpu, name, false)
            && let Some(x) = self.number_in(v, field("cpu"), 0.01, 1024.0)
        {
            s.targets.push(Target::Cpu(x));
        }
    }

    /// How `autoscale` decides: tolerance, windows, step, forecast.
    fn autoscale_tuning(
        &mut self,
        [tolerance, window, cooldown, step, predict, idle, horizon]: [Option<Entry<'_, '_>>; 7],
        name: &str,
        plain: bool,
        s: &mut Spec,
    ) {
        let field = |key| Field { key, table: name };
        if let Some((_, v)) = tolerance
            && let Some(x) = self.number_in(v, field("tolerance"), 0.0, 0.9)
        {
            s.tolerance = x;
        }
        if let Some((_, v)) = window
            && let Some(d) = self.duration_max(v, field("scale_down_window"), DAY)
        {
            s.scale_down_window_ms = ms(d);
        }
        if let Some((_, v)) = cooldown
            && let Some(d) = self.duration_max(v, field("cooldown"), HOUR)
        {
            s.cooldown_ms = ms(d);
        }
        if let Some((_, v)) = step
            && let Some(x) = self.number_in(v, field("max_step_up"), 1.1, 100.0)
        {
            s.max_step_up = x;
        }
        let horizon_ms = match horizon {
            Some((_, v)) => self.duration_max(v, field("horizon"), HOUR).map(ms),
            None => Some(ms(DEFAULT_HORIZON)),
        };
        if let Some((_, v)) = predict {
            let on = match v.get_ref() {
                DeValue::Boolean(b) => *b,
                _ => {
                    self.type_error(v, field("predict"), "true or false", None);
                    false
                }
            };
            if on && plain {
                let message =
                    format!("`predict` in [{name}] forecasts task arrivals: it needs a task agent");
                self.problem(v.span(), message, Some("add protocol = \"jsonrpc\"".into()));
            } else if on {
                s.predict_horizon_ms = horizon_ms;
            }
        }
        if let Some((_, v)) = idle {
            match self.duration_max(v, field("idle_window"), DAY) {
                Some(_) if s.min > 0 => self.problem(
                    v.span(),
                    format!("`idle_window` in [{name}] applies only with min = 0"),
                    Some("set min = 0 to let the agent sleep when idle".into()),
                ),
                Some(d) => s.idle_window_ms = ms(d),
                None => {}
            }
        }
    }
}
