//! Typed readers of single values: strings, numbers in a range, durations,
//! sizes, paths, choices, string lists. Each records a located problem and
//! returns None instead of failing, so one run reports every error.

use super::*;

impl Checker<'_> {
    pub(super) fn string<'a>(&mut self, v: &'a Value<'_>, field: Field<'_>) -> Option<&'a str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s),
            _ => {
                self.type_error(v, field, "a string", None);
                None
            }
        }
    }

    /// "remove the quotes" help for a string that holds a number.
    pub(super) fn unquote_help(v: &Value<'_>, field: Field<'_>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) if s.trim().parse::<f64>().is_ok() => {
                Some(format!("remove the quotes: {} = {}", field.key, s.trim()))
            }
            _ => None,
        }
    }

    /// An integer of any size TOML allows; `None` after reporting.
    pub(super) fn integer(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<i128> {
        match v.get_ref() {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.problem(v.span(), format!("{} is out of range", field.what()), None);
                    None
                }
            },
            DeValue::Float(f) => {
                let help = f
                    .as_str()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.fract() == 0.0 && x.is_finite())
                    .map(|x| format!("write it without a fraction: {} = {x}", field.key));
                self.type_error(v, field, "an integer", help);
                None
            }
            _ => {
                self.type_error(v, field, "an integer", Self::unquote_help(v, field));
                None
            }
        }
    }

    pub(super) fn int_in(
        &mut self,
        v: &Value<'_>,
        field: Field<'_>,
        lo: i128,
        hi: i128,
    ) -> Option<i128> {
        let n = self.integer(v, field)?;
        self.within(v, field, n, Some(lo), hi, |x| x.to_string())
    }

    /// An integer or float, finite.
    pub(super) fn number(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<f64> {
        match v.get_ref() {
            DeValue::Integer(_) => {
                // Precision loss past 2^53 does not matter at these ranges.
                self.integer(v, field).map(|n| n as f64)
            }
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(x) if x.is_finite() => Some(x),
                _ => {
                    self.problem(
                        v.span(),
                        format!("{} must be a finite number", field.what()),
                        None,
                    );
                    None
                }
            },
            _ => {
                self.type_error(v, field, "a number", Self::unquote_help(v, field));
                None
            }
        }
    }

    pub(super) fn number_in(
        &mut self,
        v: &Value<'_>,
        field: Field<'_>,
        lo: f64,
        hi: f64,
    ) -> Option<f64> {
        let x = self.number(v, field)?;
        self.within(v, field, x, Some(lo), hi, |x| x.to_string())
    }

    pub(super) fn duration(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<Duration> {
        match v.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.problem(
                        v.span(),
                        format!("invalid duration for {}", field.what()),
                        Some(e),
                    );
                    None
                }
            },
            DeValue::Integer(i) => {
                let help = format!("durations need a unit: {} = \"{}s\"", field.key, i.as_str());
                self.type_error(v, field, "a duration string", Some(help));
                None
            }
            _ => {
                let help = format!("write it as a string with a unit: {} = \"10s\"", field.key);
                self.type_error(v, field, "a duration string", Some(help));
                None
            }
        }
    }

    pub(super) fn duration_max(
        &mut self,
        v: &Value<'_>,
        field: Field<'_>,
        max: Duration,
    ) -> Option<Duration> {
        let d = self.duration(v, field)?;
        self.within(v, field, d, None, max, format_duration)
    }

    pub(super) fn size(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<u64> {
        match v.get_ref() {
            DeValue::String(s) => match parse_size(s) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.problem(
                        v.span(),
                        format!("invalid size for {}", field.what()),
                        Some(e),
                    );
                    None
                }
            },
            DeValue::Integer(_) => {
                let n = self.integer(v, field)?;
                match u64::try_from(n) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.problem(
                            v.span(),
                            format!("{} cannot be negative, found {n}", field.what()),
                            None,
                        );
                        None
                    }
                }
            }
            _ => {
                let help = format!(
                    "write bytes as an integer or a string with a unit: {} = \"512MiB\"",
                    field.key
                );
                self.type_error(v, field, "a size", Some(help));
                None
            }
        }
    }

    pub(super) fn size_in(
        &mut self,
        v: &Value<'_>,
        field: Field<'_>,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        let n = self.size(v, field)?;
        self.within(v, field, n, Some(lo), hi, format_size)
    }

    /// The one range check: keeps `x` when it lies in `lo..=hi` (no lower
    /// bound when `lo` is None), else records where and why, each value
    /// shown by `show` in the config's own notation.
    pub(super) fn within<T: PartialOrd + Copy>(
        &mut self,
        v: &Value<'_>,
        field: Field<'_>,
        x: T,
        lo: Option<T>,
        hi: T,
        show: impl Fn(T) -> String,
    ) -> Option<T> {
        // (A NaN compares false both ways: it is in no range.)
        if lo.is_none_or(|lo| x >= lo) && x <= hi {
            return Some(x);
        }
        let range = match lo {
            Some(lo) => format!("between {} and {}", show(lo), show(hi)),
            None => format!("at most {}", show(hi)),
        };
        let message = format!("{} must be {range}, found {}", field.what(), show(x));
        self.problem(v.span(), message, None);
        None
    }

    /// A path string: not empty, no NUL, no `~`; relative → config dir.
    pub(super) fn path(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<PathBuf> {
        let s = self.string(v, field)?;
        if s.is_empty() {
            self.problem(v.span(), format!("{} is empty", field.what()), None);
            return None;
        }
        if s.contains('\0') {
            self.problem(
                v.span(),
                format!("{} contains a NUL character", field.what()),
                None,
            );
            return None;
        }
        if s == "~" || s.starts_with("~/") {
            self.problem(
                v.span(),
                format!("{} starts with `~`, which is not expanded", field.what()),
                Some(
                    "write the absolute path, or a path relative to the config file's directory"
                        .to_owned(),
                ),
            );
            return None;
        }
        let p = PathBuf::from(s);
        Some(match &self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p,
        })
    }

    /// A choice among `options`.
    pub(super) fn choice<T: Copy>(
        &mut self,
        v: &Value<'_>,
        field: Field<'_>,
        options: &[(&'static str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let s = match v.get_ref() {
            DeValue::String(s) => s,
            _ => {
                let help = format!("use one of: {}", names.join(", "));
                self.type_error(v, field, "a string", Some(help));
                return None;
            }
        };
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == s.as_ref()) {
            return Some(*t);
        }
        let help = match did_you_mean(s, &names) {
            Some(m) => format!("did you mean \"{m}\"? (one of: {})", names.join(", ")),
            None => format!("use one of: {}", names.join(", ")),
        };
        self.problem(
            v.span(),
            format!("invalid value `{s}` for {}", field.what()),
            Some(help),
        );
        None
    }

    /// An array of strings, each with its span.
    pub(super) fn strings<'a>(
        &mut self,
        v: &'a Value<'_>,
        field: Field<'_>,
        help: Option<String>,
    ) -> Option<Vec<(&'a str, Span)>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(v, field, "an array of strings", help);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.as_ref(), item.span())),
                other => {
                    ok = false;
                    if !is_placeholder(item) {
                        self.problem(
                            item.span(),
                            format!(
                                "{} must contain only strings, found {}",
                                field.what(),
                                found(other)
                            ),
                            None,
                        );
                    }
                }
            }
        }
        ok.then_some(out)
    }
}
