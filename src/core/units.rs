//! Human durations (`"1h30m"`) and sizes (`"512MiB"`): parsing and display.

use std::time::Duration;

const DURATION_FORMS: &str = "a duration is a number with a unit (ns, us, ms, s, m, h, d), \
     e.g. \"500ms\", \"10s\", \"1.5s\" or \"1h30m\"";

const SIZE_FORMS: &str = "a size is a number of bytes with an optional unit: \
     K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), \
     e.g. \"512MiB\" or \"2G\"";

/// Parses a human duration.
///
/// Grammar: one or more `NUMBER UNIT` parts, added up (`"1h30m"`,
/// `"1m 30s"`). `NUMBER` is decimal, optionally with a fraction (`"1.5s"`,
/// precision down to the nanosecond, the rest is dropped). Units, case-insensitive:
/// `ns`; `us`/`µs`; `ms`; `s`/`sec`/`secs`/`second`/`seconds`;
/// `m`/`min`/`mins`/`minute`/`minutes`; `h`/`hr`/`hour`/`hours`; `d`/`day`/`days`.
/// Blanks between parts and between a number and its unit are allowed.
///
/// A bare number (`"10"`), a negative or empty value, an unknown unit
/// (`"10 parsecs"`) and anything over ~584 years are errors; the error text
/// says what is accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {DURATION_FORMS}"));
    }
    if text.starts_with('-') {
        return Err(format!("`{s}`: a duration cannot be negative"));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, after) = take_number(rest);
        if number.is_empty() {
            return Err(format!(
                "`{s}` is not a duration: expected a number at `{after}`; {DURATION_FORMS}"
            ));
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("`{s}` has no unit; {DURATION_FORMS}"));
        }
        let nanos: u128 = match unit.to_lowercase().as_str() {
            "ns" | "nsec" | "nanosecond" | "nanoseconds" => 1,
            "us" | "µs" | "μs" | "usec" | "microsecond" | "microseconds" => 1_000,
            "ms" | "msec" | "millisecond" | "milliseconds" => 1_000_000,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000_000_000,
            "d" | "day" | "days" => 86_400_000_000_000,
            _ => {
                return Err(format!(
                    "`{s}` is not a duration: unknown unit `{unit}`; {DURATION_FORMS}"
                ));
            }
        };
        let part = scale_decimal(number, nanos).ok_or_else(|| {
            format!("`{s}` is not a duration: malformed or too large number `{number}`")
        })?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("`{s}` is too long a duration"))?;
        rest = after.trim_start();
    }
    let nanos = u64::try_from(total).map_err(|_| format!("`{s}` is too long a duration"))?;
    Ok(Duration::from_nanos(nanos))
}

/// Parses a size in bytes.
///
/// `NUMBER [UNIT]`, with an optional blank between; `NUMBER` is decimal and
/// may have a fraction (`"1.5GiB"`; the result is rounded down to whole
/// bytes). Units, case-insensitive: none or `B` (bytes); `K`, `KiB`, `Ki` =
/// 1024; `M`, `MiB`, `Mi` = 1024²; `G`, `GiB`, `Gi` = 1024³; `T`, `TiB`, `Ti`
/// = 1024⁴; `KB` = 1000; `MB` = 1000²; `GB` = 1000³; `TB` = 1000⁴.
/// So `"1G"` is 1 GiB but `"1GB"` is 10⁹ bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty size; {SIZE_FORMS}"));
    }
    if text.starts_with('-') {
        return Err(format!("`{s}`: a size cannot be negative"));
    }
    let (number, unit) = take_number(text);
    if number.is_empty() {
        return Err(format!("`{s}` is not a size; {SIZE_FORMS}"));
    }
    const KI: u128 = 1024;
    let multiplier: u128 = match unit.trim_start().to_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => KI,
        "m" | "mi" | "mib" => KI.pow(2),
        "g" | "gi" | "gib" => KI.pow(3),
        "t" | "ti" | "tib" => KI.pow(4),
        "kb" => 1000,
        "mb" => 1000u128.pow(2),
        "gb" => 1000u128.pow(3),
        "tb" => 1000u128.pow(4),
        other => {
            return Err(format!(
                "`{s}` is not a size: unknown unit `{other}`; {SIZE_FORMS}"
            ));
        }
    };
    let bytes = scale_decimal(number, multiplier)
        .ok_or_else(|| format!("`{s}` is not a size: malformed number `{number}`"))?;
    u64::try_from(bytes).map_err(|_| format!("`{s}` is too large a size"))
}

/// Splits off the leading run of digits and dots.
fn take_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    s.split_at(end)
}

/// `number × unit` exactly, for `number` = `DIGITS[.DIGITS]`, rounded down.
/// `None` when the number is malformed or the result overflows.
fn scale_decimal(number: &str, unit: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (number, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u128 = int.parse().ok()?;
    let mut value = int.checked_mul(unit)?;
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Units are below 10^15, so digits past the 20th cannot change the
        // rounded-down result.
        let digits = &frac[..frac.len().min(20)];
        let numerator: u128 = digits.parse().ok()?;
        let denominator = 10u128.pow(u32::try_from(digits.len()).ok()?);
        value = value.checked_add(numerator.checked_mul(unit)? / denominator)?;
    }
    Some(value)
}

/// Formats a duration the way [`parse_duration`] reads it back:
/// `"500ms"`, `"30s"`, `"1h30m"`, `"1s500ms"`, `"250us"`, `"0s"`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let mut nanos = d.as_nanos();
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000_000_000u128),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        let n = nanos / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            nanos %= size;
        }
    }
    out
}

/// A UTC time for reports: `2026-11-28 13:04:05Z`.
pub fn utc(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// A short, human duration for messages: `"250ms"`, `"1.5s"`, `"3m"`,
/// `"2m30s"`, `"1h"`, `"1h30m"`, `"2d"` (zero parts left out; seconds
/// dropped from an hour up).
pub fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        // Integer tenths, rounded half up: no float formatting on a
        // crash → restart path (it cost a few microseconds there).
        if ms.is_multiple_of(1000) {
            return format!("{}s", ms / 1000);
        }
        let tenths = (ms + 50) / 100;
        return format!("{}.{}s", tenths / 10, tenths % 10);
    }
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if sec > 0 && s < 3600 {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// "1h02m", "5m12s", "42s".
pub fn fmt_age(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 86_400 {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Formats a byte count in the largest binary unit it reaches: exact when
/// that unit divides it (`"16MiB"`, `"512B"`), else with one decimal
/// (`"15.4GiB"`, `"50.6KiB"`). Every size a person reads goes through here.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes < size {
            continue;
        }
        if bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
        // Display only: precision loss is fine.
        let value = bytes as f64 / size as f64;
        return format!("{value:.1}{unit}");
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(fmt_age(42_000), "42s");
        assert_eq!(fmt_age(312_000), "5m12s");
        assert_eq!(fmt_age(3_720_000), "1h02m");
        assert_eq!(fmt_age(90_000_000), "1d01h");
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("5m"), Ok(ms(300_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("2d"), Ok(ms(172_800_000)));
        assert_eq!(parse_duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1m 30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("0.25h"), Ok(ms(900_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration(" 10 seconds "), Ok(ms(10_000)));
        assert_eq!(parse_duration("10S"), Ok(ms(10_000)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration("1.0000000001s"),
            Ok(Duration::from_nanos(1_000_000_000))
        );
    }

    #[test]
    fn bad_durations_say_what_is_accepted() {
        for bad in [
            "10",
            "0",
            "",
            "  ",
            "10 parsecs",
            "s",
            "1.s",
            "1..5s",
            "-5s",
            "1h30",
            "abc",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(!err.is_empty(), "{bad}");
            if bad != "-5s" && bad != "1.s" && bad != "1..5s" {
                assert!(err.contains("\"500ms\""), "{bad}: {err}");
            }
        }
        assert!(
            parse_duration("10 parsecs")
                .expect_err("unit")
                .contains("unknown unit `parsecs`")
        );
        assert!(parse_duration("10").expect_err("bare").contains("no unit"));
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("1000000000000000000000000000000000000000000s").is_err());
    }

    #[test]
    fn duration_round_trip() {
        for d in [
            ms(500),
            ms(30_000),
            ms(5_400_000),
            ms(1_500),
            Duration::from_micros(250),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(ms(5_400_000)), "1h30m");
        assert_eq!(format_duration(ms(1_500)), "1s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(ms(172_800_000)), "2d");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4000));
        assert_eq!(parse_size("256Mi"), Ok(256 << 20));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "",
            "MiB",
            "12 parsecs",
            "-1GiB",
            "1..2G",
            "1.G",
            "99999999999TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("3 apples").expect_err("unit").contains("KiB"));
    }

    #[test]
    fn size_display() {
        assert_eq!(format_size(16 << 20), "16MiB");
        assert_eq!(format_size(512), "512B");
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(3 << 29), "1.5GiB");
        assert_eq!(format_size(4095), "4.0KiB");
        assert_eq!(format_size(51834), "50.6KiB");
        assert_eq!(format_size(1023), "1023B");
        assert_eq!(fmt_ms(3_600_000), "1h");
        assert_eq!(fmt_ms(5_400_000), "1h30m");
        assert_eq!(fmt_ms(150_000), "2m30s");
        assert_eq!(fmt_ms(180_000), "3m");
        assert_eq!(fmt_ms(1_500), "1.5s");
        assert_eq!(fmt_ms(1_949), "1.9s");
        assert_eq!(fmt_ms(1_950), "2.0s");
        assert_eq!(fmt_ms(1_001), "1.0s");
        assert_eq!(fmt_ms(59_999), "60.0s");
        assert_eq!(fmt_ms(2_000), "2s");
        assert_eq!(fmt_ms(172_800_000), "2d");
        assert_eq!(format_size(4096), "4KiB");
        assert_eq!(format_size(16_564_023_296), "15.4GiB");
        for n in [16u64 << 20, 512, 1 << 40, 4096] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
    }
}
