//! `[[hosts]]`: the daemons on other machines a client reaches by name.
//! Each entry: `name`, `url` (`ssh://[user@]host[:port]`), and optionally
//! the remote `data_dir`, `socket` and `remote_bin`.

use super::*;

const HELP: &str =
    "write each host as a [[hosts]] table with name and url = \"ssh://[user@]host[:port]\"";

impl Checker<'_> {
    pub(super) fn hosts(&mut self, v: &Value<'_>) -> Vec<HostSpec> {
        let DeValue::Array(items) = v.get_ref() else {
            let field = Field {
                key: "hosts",
                table: "",
            };
            self.type_error(
                v,
                field,
                "an array of tables ([[hosts]])",
                Some(HELP.into()),
            );
            return Vec::new();
        };
        let mut out: Vec<HostSpec> = Vec::new();
        for item in items.iter() {
            let DeValue::Table(t) = item.get_ref() else {
                let msg = "each entry of `hosts` must be a table".into();
                self.problem(item.span(), msg, Some(HELP.into()));
                continue;
            };
            let Some(h) = self.host(t, item.span()) else {
                continue;
            };
            if out.iter().any(|o| o.name == h.name) {
                let msg = format!("host `{}` is defined twice", h.name);
                self.problem(item.span(), msg, Some("give each host its own name".into()));
                continue;
            }
            out.push(h);
        }
        out
    }

    fn host(&mut self, t: &DeTable<'_>, whole: Span) -> Option<HostSpec> {
        let [name, url, data_dir, socket, remote_bin] = self.fields(
            t,
            "hosts",
            ["name", "url", "data_dir", "socket", "remote_bin"],
            |k| match k {
                "host" | "address" | "ssh" => Some("did you mean `url`?".into()),
                _ => None,
            },
        );
        let field = |key| Field {
            key,
            table: "hosts",
        };
        let name = match name {
            Some((_, v)) => {
                let s = self.string(v, field("name"))?;
                if !super::observe::valid_name(s) || s == "all" {
                    let msg = format!("invalid host name `{s}`");
                    let help =
                        "use lowercase letters, digits, `-` and `_` (`all` means every host)";
                    self.problem(v.span(), msg, Some(help.into()));
                    return None;
                }
                s.to_owned()
            }
            None => {
                let msg = "this [[hosts]] entry has no `name`".into();
                self.problem(whole, msg, Some("add name = \"gpu-1\"".into()));
                return None;
            }
        };
        let url = match url {
            Some((_, v)) => {
                let s = self.string(v, field("url"))?;
                if !s.starts_with("ssh://") || s.len() <= "ssh://".len() {
                    let msg = format!("host `{name}`: `{s}` is not an ssh:// URL");
                    let help = "write url = \"ssh://[user@]host[:port]\"";
                    self.problem(v.span(), msg, Some(help.into()));
                    return None;
                }
                s.to_owned()
            }
            None => {
                let msg = format!("host `{name}` has no `url`");
                let help = "add url = \"ssh://user@host\"";
                self.problem(whole, msg, Some(help.into()));
                return None;
            }
        };
        let mut text = |e: Option<Entry<'_, '_>>, key| {
            e.and_then(|(_, v)| self.string(v, field(key)).map(str::to_owned))
        };
        Some(HostSpec {
            name,
            url,
            data_dir: text(data_dir, "data_dir"),
            socket: text(socket, "socket"),
            remote_bin: text(remote_bin, "remote_bin"),
        })
    }
}
