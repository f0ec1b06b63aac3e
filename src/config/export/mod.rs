//! The fleet's config for the engines that run fleets elsewhere:
//! Kubernetes manifests per agent, and a systemd unit for the daemon.
//! Pure rendering: the CLI reads the config and writes the files.

pub mod kube_parts;
pub mod kubernetes;
pub mod systemd;
