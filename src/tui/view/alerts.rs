//! The alerts panel and an alert's detail.

use super::*;

pub(super) fn draw_alerts(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let s = m.status.as_ref();
    let alerts = s.map(|s| s.alerts.as_slice()).unwrap_or(&[]);
    let firing = alerts.iter().filter(|a| a.state == "firing").count();
    let failing: Vec<&str> = s
        .map(|s| {
            s.notifiers
                .iter()
                .filter(|n| n.last_error.is_some())
                .map(|n| n.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let elsewhere = &m.elsewhere_alerts;
    let mut lines: Vec<Line> = if alerts.is_empty() && !elsewhere.is_empty() {
        Vec::new()
    } else if alerts.is_empty() {
        vec![Line::from(Span::styled("no alerts", t.muted))]
    } else {
        let rows = alerts
            .iter()
            .map(|a| {
                let mut marks = String::new();
                if a.acknowledged {
                    marks.push_str(" ack");
                }
                if a.silenced_until.is_some_and(|u| u > m.now) {
                    marks.push_str(" muted");
                }
                if a.flapping {
                    marks.push_str(" flapping");
                }
                let state_style = if a.state == "firing" {
                    severity_style(t, &a.severity)
                } else {
                    t.muted
                };
                let level = match a.severity.as_str() {
                    "critical" => "L1",
                    "major" => "L2",
                    _ => "L3",
                };
                Line::from(vec![
                    Span::styled(format!("{:<8} {level} ", a.state), state_style),
                    Span::styled(format!("{} ", a.id), t.accent),
                    Span::styled(
                        format!("{:>5} ", fmt_age(m.now.saturating_sub(a.since))),
                        t.muted,
                    ),
                    Span::styled(sanitize_line(a.summary.as_bytes()), t.text),
                    Span::styled(marks, t.muted),
                ])
            })
            .collect();
        selectable(rows, m.alert_selected, m.focus == Panel::Alerts, t)
    };
    if !failing.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("notifier failing: {}", failing.join(", ")),
            t.bad,
        )));
    }
    // Other hosts' live alerts under this host's, tagged with the host
    // (read-only: `{`/`}` to the host to act on one).
    for (host, a) in elsewhere {
        let style = if a.state == "firing" {
            severity_style(t, &a.severity)
        } else {
            t.muted
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<8} ", a.state), style),
            Span::styled(format!("[{host}] "), t.muted),
            Span::styled(format!("{} ", a.id), t.accent),
            Span::styled(sanitize_line(a.summary.as_bytes()), t.muted),
        ]));
    }
    let others = if elsewhere.is_empty() {
        String::new()
    } else {
        format!(" · {} on other hosts", elsewhere.len())
    };
    f.render_widget(
        Paragraph::new(lines).block(block(
            m,
            t,
            Panel::Alerts,
            format!(" · {firing} firing · {} listed{others}", alerts.len()),
        )),
        area,
    );
}

/// The selected alert, in the detail area while the alert feed has focus.
pub(super) fn draw_alert_detail(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let a = m
        .status
        .as_ref()
        .and_then(|s| s.alerts.get(m.alert_selected));
    let b = detail_block(t, " Alert ");
    let Some(a) = a else {
        return nothing_selected(f, area, b, t, "no alert selected");
    };
    let kv = |k: &str, v: String, style: Style| kv_line(t, 10, k, v, style);
    let level = match a.severity.as_str() {
        "critical" => "Level 1",
        "major" => "Level 2",
        _ => "Level 3",
    };
    let mut lines = vec![
        kv("alert", a.id.clone(), t.accent),
        kv(
            "state",
            format!("{} since {}", a.state, hhmmss(a.since)),
            severity_style(t, &a.severity),
        ),
        kv(
            "severity",
            format!("{} ({level})", a.severity),
            severity_style(t, &a.severity),
        ),
        kv("summary", sanitize_line(a.summary.as_bytes()), t.text),
    ];
    match (a.value, a.fired_value) {
        (Some(v), Some(f)) if f != v => {
            lines.push(kv(
                "value",
                format!("{v:.2} now · {f:.2} when it fired"),
                t.text,
            ));
        }
        (Some(v), _) => lines.push(kv("value", format!("{v:.2}"), t.text)),
        _ => {}
    }
    if let Some(by) = &a.acknowledged_by {
        lines.push(kv("acked by", by.clone(), t.text));
    }
    if let Some(u) = a.silenced_until.filter(|u| *u > m.now) {
        lines.push(kv("silenced", format!("until {}", hhmmss(u)), t.text));
    }
    if a.flapping {
        lines.push(kv(
            "flapping",
            "notifications muted until it settles".into(),
            t.warn,
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "a acknowledge · :silence ID 1h · :incident LEVEL TITLE",
        t.muted,
    )));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(b),
        area,
    );
}
