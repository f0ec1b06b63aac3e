//! The fleet table.

use super::*;

pub(super) fn draw_fleet(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let agents = m.agents();
    let now = m.status.as_ref().map(|s| s.now).unwrap_or(m.now);
    let wide = area.width >= 90;
    let rows: Vec<TRow> = m
        .rows()
        .iter()
        .map(|row| match *row {
            Row::Agent(i) => {
                let a = &agents[i];
                let cpu: f64 = a.replicas.iter().map(|r| r.cpu_percent).sum();
                let mem: u64 = a.replicas.iter().map(|r| r.rss_bytes).sum();
                let restarts: u64 = a.replicas.iter().map(|r| r.restarts).sum();
                let oldest = a.replicas.iter().filter_map(|r| r.started_at).min();
                let state = agent_state(a);
                let st = a
                    .replicas
                    .iter()
                    .map(|r| r.state)
                    .find(|s| s.label() == state);
                let marker = if a.replicas.is_empty() {
                    "  "
                } else if m.expanded.contains(&a.name) {
                    "▾ "
                } else {
                    "▸ "
                };
                let mut cells = vec![
                    Cell::from(format!("{marker}{}", a.name)),
                    Cell::from(format!("{}/{}", a.running, a.desired)),
                    Cell::from(state.clone()).style(st.map(|s| t.state(s)).unwrap_or(t.muted)),
                    Cell::from(format!("{cpu:5.1}%")),
                    Cell::from(format_size(mem)),
                    Cell::from(restarts.to_string()),
                    Cell::from(
                        oldest
                            .map(|s| fmt_age(now.saturating_sub(s)))
                            .unwrap_or_else(|| "-".into()),
                    ),
                ];
                if wide {
                    let last = a
                        .replicas
                        .iter()
                        .filter_map(|r| r.last_exit)
                        .max_by_key(|e| e.at);
                    cells.push(Cell::from(
                        last.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
                    ));
                }
                TRow::new(cells)
            }
            Row::Replica(i, j) => {
                let r = &agents[i].replicas[j];
                let state = match (&r.waiting, &r.error) {
                    (Some(w), _) | (None, Some(w)) => {
                        format!("{} ({})", r.state.label(), sanitize_line(w.as_bytes()))
                    }
                    _ => r.state.label().to_string(),
                };
                let mut cells = vec![
                    Cell::from(format!("   /{}", r.index)),
                    Cell::from(r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into())),
                    Cell::from(state).style(t.state(r.state)),
                    Cell::from(format!("{:5.1}%", r.cpu_percent)),
                    Cell::from(format_size(r.rss_bytes)),
                    Cell::from(r.restarts.to_string()),
                    Cell::from(
                        r.started_at
                            .map(|s| fmt_age(now.saturating_sub(s)))
                            .unwrap_or_else(|| "-".into()),
                    ),
                ];
                if wide {
                    cells.push(Cell::from(
                        r.last_exit
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ));
                }
                TRow::new(cells).style(t.muted)
            }
        })
        .collect();
    let mut widths = vec![
        Constraint::Min(16),
        Constraint::Length(6),
        Constraint::Length(16),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(7),
    ];
    let mut header = vec![
        "AGENT", "REPL", "STATE", "CPU", "MEMORY", "RESTARTS", "UPTIME",
    ];
    if wide {
        widths.push(Constraint::Length(16));
        header.push("LAST EXIT");
    }
    let extra = format!(
        " · {} agents · sort {}{}",
        agents.len(),
        m.sort.label(),
        if m.filter.is_empty() {
            String::new()
        } else {
            format!(" · filter “{}”", m.filter)
        }
    );
    let table = Table::new(rows, widths)
        .header(TRow::new(header).style(t.accent))
        .block(block(m, t, Panel::Fleet, extra))
        .row_highlight_style(t.selection);
    let mut state = TableState::default();
    if !m.rows().is_empty() {
        state.select(Some(m.selected.min(m.rows().len() - 1)));
    }
    f.render_stateful_widget(table, area, &mut state);
}
