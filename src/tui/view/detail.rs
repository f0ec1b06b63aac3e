//! The selected replica: its state machine and recent transitions.

use super::*;

/// The lifecycle as a diagram, the current state highlighted:
///
/// ```text
/// Stopped → Init → Alloc → Context
///    ↑       ↑                 ↓
/// Decomm  Backoff  Monitor ⇄ Active
///    ↑       ↑        ↓        ↓
///    └─────Adapt ←────────── Done → Failed
/// ```
pub fn state_machine(current: Option<State>, t: &Theme) -> Vec<Line<'static>> {
    let s = |st: State| {
        let name = match st {
            State::Initialization => "Init",
            State::ResourceAllocation => "Alloc",
            State::ContextPreparation => "Context",
            State::ActiveOperation => "Active",
            State::PerformanceMonitoring => "Monitor",
            State::Adaptation => "Adapt",
            State::TaskCompletion => "Done",
            State::Decommissioning => "Decomm",
            State::Backoff => "Backoff",
            State::Failed => "Failed",
            State::Stopped => "Stopped",
        };
        let style = if Some(st) == current {
            t.state(st)
                .add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            t.state(st)
        };
        Span::styled(name, style)
    };
    let a = |x: &'static str| Span::styled(x, t.muted);
    vec![
        Line::from(vec![
            s(State::Stopped),
            a(" → "),
            s(State::Initialization),
            a(" → "),
            s(State::ResourceAllocation),
            a(" → "),
            s(State::ContextPreparation),
        ]),
        Line::from(a("   ↑       ↑                 ↓")),
        Line::from(vec![
            s(State::Decommissioning),
            a("  "),
            s(State::Backoff),
            a("  "),
            s(State::PerformanceMonitoring),
            a(" ⇄ "),
            s(State::ActiveOperation),
        ]),
        Line::from(a("   ↑       ↑        ↓        ↓")),
        Line::from(vec![
            a("   └─────"),
            s(State::Adaptation),
            a(" ←────────── "),
            s(State::TaskCompletion),
            a(" → "),
            s(State::Failed),
        ]),
    ]
}

pub(super) fn draw_detail(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let Some(a) = m.selected_agent() else {
        f.render_widget(
            Paragraph::new("no agent").block(block(m, t, Panel::Detail, String::new())),
            area,
        );
        return;
    };
    let r = m.selected_replica();
    let title = match r {
        Some(r) => format!(" · {}/{}", a.name, r.index),
        None => format!(" · {}", a.name),
    };
    let mut lines = state_machine(r.map(|r| r.state), t);
    lines.push(Line::from(""));
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<9}"), t.muted),
            Span::styled(v, t.text),
        ])
    };
    lines.push(kv("command", sanitize_line(a.command.join(" ").as_bytes())));
    let limit = a
        .memory_limit
        .map(|l| format!(", limit {} ({})", format_size(l), a.memory_limit_action))
        .unwrap_or_default();
    lines.push(kv(
        "requests",
        format!(
            "{:.2} cpu, {}{limit}",
            a.cpu_request,
            format_size(a.memory_request)
        ),
    ));
    lines.push(kv("restart", a.restart.clone()));
    if let Some((_, replica, branch, changes)) = m.worktree.as_ref().filter(|w| w.0 == a.name) {
        let text = format!("{branch} (replica {replica}) · {changes}");
        lines.push(kv("worktree", sanitize_line(text.as_bytes())));
    }
    if let Some(t) = &a.tasks {
        let p95 = t.run_p95_ms.map_or("-".into(), crate::core::units::fmt_ms);
        lines.push(kv(
            "tasks",
            format!(
                "queue {} · running {} · completed {} · failed {} · p95 {p95}",
                t.queue, t.in_flight, t.completed, t.failed
            ),
        ));
    }
    if let Some(x) = &a.autoscale {
        let pending = if x.recommended != x.desired {
            format!(" → {} pending", x.recommended.clamp(x.min, x.max))
        } else {
            String::new()
        };
        lines.push(kv(
            "autoscale",
            format!(
                "{} · {}{pending} (min {}, max {}) · {}",
                if x.enabled {
                    "on"
                } else {
                    "OFF (A turns it on)"
                },
                x.desired,
                x.min,
                x.max,
                sanitize_line(x.reason.as_bytes())
            ),
        ));
        for t in &x.targets {
            let cur = t.current.map_or("-".into(), |c| format!("{c:.2}"));
            lines.push(kv(
                "",
                format!("{} {cur} / target {} → {}", t.name, t.target, t.recommends),
            ));
        }
    }
    if !a.env.is_empty() {
        let env: Vec<String> = a.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.push(kv("env", sanitize_line(env.join(" ").as_bytes())));
    }
    lines.push(kv("context", a.context_dir.clone()));
    if let Some(r) = r {
        if let Some(w) = r.waiting.as_ref().or(r.error.as_ref()) {
            lines.push(Line::from(Span::styled(
                sanitize_line(w.as_bytes()),
                t.warn,
            )));
        }
        // The heading only with at least one transition under it.
        let room = (area.height as usize).saturating_sub(2 + lines.len());
        if room >= 2 && !r.history.is_empty() {
            lines.push(Line::from(Span::styled("recent transitions", t.accent)));
        }
        for tr in r.history.iter().rev().take(room.saturating_sub(1)) {
            let when = jiff::Timestamp::from_millisecond(tr.at as i64)
                .map(|x| x.strftime("%H:%M:%S").to_string())
                .unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(format!("{when} "), t.muted),
                Span::styled(tr.to.label().to_string(), t.state(tr.to)),
                Span::styled(format!("  {}", sanitize_line(tr.reason.as_bytes())), t.text),
            ]));
        }
    }
    f.render_widget(
        Paragraph::new(Text::from(lines)).block(block(m, t, Panel::Detail, title)),
        area,
    );
}
