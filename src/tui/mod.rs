//! The console (feature `tui`): arrives with the console issue; the daemon and CLI never depend on it.
