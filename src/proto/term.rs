//! Interactive (`tty = true`) agents as clients see them: a replica's
//! screen as text, and what it is doing.

use serde::{Deserialize, Serialize};

/// The screen of a replica's terminal, as plain text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Screen {
    pub agent: String,
    pub replica: u32,
    pub rows: u16,
    pub cols: u16,
    /// (row, col), from 0.
    pub cursor: (u16, u16),
    pub lines: Vec<String>,
    /// With `cells`: the emulator's rendition of the screen (what a fresh
    /// emulator needs to show the same cells, colors and cursor); produced
    /// by the daemon's emulator, never the agent's raw bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub formatted: String,
    /// Who holds the replica's input (typed in focus mode lately).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

/// What a tty replica is doing, for the operator's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attention {
    /// Output flowing, or busy on the CPU.
    Working,
    /// Blocked reading its terminal (or its screen matches a pattern).
    WaitingInput,
    /// Quiet, and not waiting on its terminal.
    Idle,
    Exited,
}

impl std::fmt::Display for Attention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Attention::Working => "working",
            Attention::WaitingInput => "waiting-input",
            Attention::Idle => "idle",
            Attention::Exited => "exited",
        })
    }
}
