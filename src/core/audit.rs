//! The audit trail's rules: records chained by SHA-256, checkpoints signed
//! with ed25519, and the verification of a whole log.
//!
//! Pure: the daemon does the file work (`daemon::audit`), the CLI reads the
//! files for `audit verify`; both call in here.
//!
//! A record's hash covers its canonical JSON without the `hash` field,
//! prefixed with a domain tag; `prev` is the previous record's hash (64
//! zeros for the first). A checkpoint signs `(seq, head hash, time)`: a log
//! that is shorter than a checkpoint, or whose record at the checkpoint's
//! sequence has another hash, was truncated, rolled back or re-chained.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::lifecycle::Millis;

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const RECORD_TAG: &[u8] = b"autonomos-audit-record-v1\n";
const CHECKPOINT_TAG: &str = "autonomos-audit-checkpoint-v1";

/// One audit record, one JSON line. Unknown fields are refused: the hash
/// covers the known ones only, so an added field must not pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u64,
    /// ms since the Unix epoch.
    pub ts: Millis,
    /// Who: `uid 1000 (pid 4242)`, `uid 1000 (pid 42, via ssh from …)`, or
    /// `autonomos` for the daemon's own events.
    pub actor: String,
    /// What: `scale`, `restart`, `reload`, `replica-failed`,
    /// `incident-opened`, `connection-refused`, …
    pub action: String,
    /// Its arguments.
    #[serde(default)]
    pub args: serde_json::Value,
    /// `ok`, or the error.
    pub result: String,
    pub prev: String,
    pub hash: String,
}

/// The hashed part of a record, in a fixed field order.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    ts: Millis,
    actor: &'a str,
    action: &'a str,
    args: &'a serde_json::Value,
    result: &'a str,
    prev: &'a str,
}

pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Record {
    /// The hash this record should carry.
    pub fn compute_hash(&self) -> String {
        let body = Body {
            seq: self.seq,
            ts: self.ts,
            actor: &self.actor,
            action: &self.action,
            args: &self.args,
            result: &self.result,
            prev: &self.prev,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(RECORD_TAG);
        h.update(&json);
        hex(&h.finalize())
    }

    /// A new record chained after `prev` (with sequence `seq`).
    pub fn seal(
        seq: u64,
        ts: Millis,
        actor: &str,
        action: &str,
        args: serde_json::Value,
        result: &str,
        prev: &str,
    ) -> Record {
        let mut r = Record {
            seq,
            ts,
            actor: actor.to_string(),
            action: action.to_string(),
            args,
            result: result.to_string(),
            prev: prev.to_string(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        r
    }

    /// The JSON line (with its newline).
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// A signed statement that the log had `seq` records ending in `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub head: String,
    pub ts: Millis,
    /// The public key, hex (so an exported checkpoint is self-contained;
    /// `verify` still decides which key it trusts).
    pub key: String,
    pub sig: String,
}

fn checkpoint_message(seq: u64, head: &str, ts: Millis) -> String {
    format!("{CHECKPOINT_TAG}\n{seq}\n{head}\n{ts}")
}

impl Checkpoint {
    pub fn sign(key: &SigningKey, seq: u64, head: &str, ts: Millis) -> Checkpoint {
        let sig = key.sign(checkpoint_message(seq, head, ts).as_bytes());
        Checkpoint {
            seq,
            head: head.to_string(),
            ts,
            key: hex(key.verifying_key().as_bytes()),
            sig: hex(&sig.to_bytes()),
        }
    }

    /// True when signed by `trusted`.
    pub fn valid(&self, trusted: &VerifyingKey) -> bool {
        let Some(sig) = unhex(&self.sig).and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
            return false;
        };
        let sig = Signature::from_bytes(&sig);
        self.key == hex(trusted.as_bytes())
            && trusted
                .verify(
                    checkpoint_message(self.seq, &self.head, self.ts).as_bytes(),
                    &sig,
                )
                .is_ok()
    }
}

pub fn verifying_key(hex_key: &str) -> Option<VerifyingKey> {
    let b = unhex(hex_key.trim())?;
    VerifyingKey::from_bytes(&<[u8; 32]>::try_from(b).ok()?).ok()
}

const ROTATION_TAG: &str = "autonomos-audit-key-rotation-v1";

/// A signing key replaced by a new one: the old key's last checkpoint,
/// and a statement naming both keys signed by each. Trust passes along a
/// chain of rotations both ways: from a trusted old key to the key it
/// endorsed, and from a trusted new key back to the key it replaced (for
/// the checkpoints up to the rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// The old key's last checkpoint (its `key` is the old key).
    pub checkpoint: Checkpoint,
    /// The new public key, hex.
    pub new_key: String,
    /// The old key's signature of the statement.
    pub by_old: String,
    /// The new key's signature of the statement.
    pub by_new: String,
}

fn rotation_message(c: &Checkpoint, new_key: &str) -> String {
    format!(
        "{ROTATION_TAG}\n{}\n{new_key}\n{}\n{}\n{}\n{}",
        c.key, c.seq, c.head, c.ts, c.sig
    )
}

fn signature_ok(key_hex: &str, message: &str, sig_hex: &str) -> bool {
    let (Some(key), Some(sig)) = (
        verifying_key(key_hex),
        unhex(sig_hex).and_then(|b| <[u8; 64]>::try_from(b).ok()),
    ) else {
        return false;
    };
    key.verify(message.as_bytes(), &Signature::from_bytes(&sig))
        .is_ok()
}

impl Rotation {
    /// Rotates from `old` (whose last checkpoint is `last`) to `new`.
    pub fn sign(old: &SigningKey, last: Checkpoint, new: &SigningKey) -> Rotation {
        let new_key = hex(new.verifying_key().as_bytes());
        let message = rotation_message(&last, &new_key);
        Rotation {
            by_old: hex(&old.sign(message.as_bytes()).to_bytes()),
            by_new: hex(&new.sign(message.as_bytes()).to_bytes()),
            checkpoint: last,
            new_key,
        }
    }

    /// Both signatures hold, and the checkpoint is the old key's.
    pub fn valid(&self) -> bool {
        let message = rotation_message(&self.checkpoint, &self.new_key);
        verifying_key(&self.checkpoint.key).is_some_and(|k| self.checkpoint.valid(&k))
            && signature_ok(&self.checkpoint.key, &message, &self.by_old)
            && signature_ok(&self.new_key, &message, &self.by_new)
    }
}

/// A key and the checkpoint sequence numbers it may sign (inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpan {
    pub key: String,
    pub from: u64,
    pub to: u64,
}

/// Which keys are trusted for which checkpoints, starting from one trusted
/// key (`key.pub`, or an exported checkpoint's key) and following valid
/// rotations both ways. Returns the spans and the rotations that were
/// invalid or do not chain (named by their sequence number).
pub fn key_spans(anchor: &str, rotations: &[Rotation]) -> (Vec<KeySpan>, Vec<u64>) {
    let valid: Vec<&Rotation> = rotations.iter().filter(|r| r.valid()).collect();
    let mut bad: Vec<u64> = rotations
        .iter()
        .filter(|r| !r.valid())
        .map(|r| r.checkpoint.seq)
        .collect();
    // The chain is followed outward from the trusted key only, so a
    // rotation between keys nobody trusts cannot displace the real ones.
    let mut used = vec![false; valid.len()];
    // Backward: the rotation that made `cur`, then the one before it...
    let mut before: Vec<(String, u64)> = Vec::new(); // (older key, its last seq)
    let mut cur = anchor.to_string();
    let mut upper = u64::MAX;
    while let Some(i) = (0..valid.len())
        .filter(|&i| !used[i] && valid[i].new_key == cur && valid[i].checkpoint.seq <= upper)
        .max_by_key(|&i| valid[i].checkpoint.seq)
    {
        used[i] = true;
        let r = valid[i];
        before.push((r.checkpoint.key.clone(), r.checkpoint.seq));
        cur = r.checkpoint.key.clone();
        upper = r.checkpoint.seq;
    }
    // Forward: the rotation `anchor` made, then the next...
    let mut after: Vec<(String, u64)> = Vec::new(); // (newer key, from seq)
    let mut cur = anchor.to_string();
    let mut lower = 0;
    while let Some(i) = (0..valid.len())
        .filter(|&i| !used[i] && valid[i].checkpoint.key == cur && valid[i].checkpoint.seq >= lower)
        .min_by_key(|&i| valid[i].checkpoint.seq)
    {
        used[i] = true;
        let r = valid[i];
        after.push((r.new_key.clone(), r.checkpoint.seq));
        cur = r.new_key.clone();
        lower = r.checkpoint.seq;
    }
    for (i, r) in valid.iter().enumerate() {
        if !used[i] {
            bad.push(r.checkpoint.seq);
        }
    }
    bad.sort_unstable();
    // Keys oldest first, each with the seq where the next one took over.
    let mut keys: Vec<(String, u64)> = before.into_iter().rev().collect(); // (key, to)
    let anchor_to = after.first().map_or(u64::MAX, |(_, s)| *s);
    keys.push((anchor.to_string(), anchor_to));
    for (n, (k, _)) in after.iter().enumerate() {
        let to = after.get(n + 1).map_or(u64::MAX, |(_, s)| *s);
        keys.push((k.clone(), to));
    }
    let mut spans = Vec::with_capacity(keys.len());
    let mut from = 0;
    for (key, to) in keys {
        spans.push(KeySpan { key, from, to });
        from = to;
    }
    (spans, bad)
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Complete records read.
    pub records: u64,
    /// The last good record's sequence number.
    pub last_seq: u64,
    /// The first record that is wrong, and how.
    pub first_bad: Option<(u64, String)>,
    /// Bytes of an unterminated last line: a write cut short by a crash, not
    /// tampering.
    pub torn_tail: Option<usize>,
    /// The highest checkpoint that the log matches.
    pub checkpoint: Option<u64>,
    /// Records after that checkpoint: chained, but not protected against
    /// truncation.
    pub unprotected: u64,
    /// Checkpoints that were ignored (bad signature or another key).
    pub bad_checkpoints: Vec<u64>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Verifies a whole log against the checkpoints signed by `trusted`.
pub fn verify(log: &[u8], checkpoints: &[Checkpoint], trusted: &VerifyingKey) -> Verdict {
    let span = KeySpan {
        key: hex(trusted.as_bytes()),
        from: 0,
        to: u64::MAX,
    };
    verify_spans(log, checkpoints, &[span])
}

/// Verifies a whole log against the checkpoints that a trusted key signed
/// within its span (see [`key_spans`]).
pub fn verify_spans(log: &[u8], checkpoints: &[Checkpoint], spans: &[KeySpan]) -> Verdict {
    let mut v = Verdict {
        records: 0,
        last_seq: 0,
        first_bad: None,
        torn_tail: None,
        checkpoint: None,
        unprotected: 0,
        bad_checkpoints: Vec::new(),
    };
    let (complete, tail) = match log.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&log[..=i], &log[i + 1..]),
        None => (&log[..0], log),
    };
    if !tail.is_empty() {
        v.torn_tail = Some(tail.len());
    }
    // Hash of each good record by sequence (index seq-1).
    let mut hashes: Vec<String> = Vec::new();
    let mut prev = GENESIS.to_string();
    for line in complete.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let expected = v.last_seq + 1;
        let r: Record = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(_) => {
                v.first_bad = Some((expected, "unreadable record (not a JSON record)".into()));
                break;
            }
        };
        v.records += 1;
        if r.seq != expected {
            let why = if r.seq < expected {
                format!(
                    "found seq {} again or out of order (duplicated or reordered)",
                    r.seq
                )
            } else {
                format!("found seq {} instead (deleted or reordered)", r.seq)
            };
            v.first_bad = Some((expected, why));
            break;
        }
        if r.prev != prev {
            v.first_bad = Some((
                r.seq,
                "does not chain to the record before it (prev hash differs)".into(),
            ));
            break;
        }
        if r.compute_hash() != r.hash {
            v.first_bad = Some((r.seq, "content does not match its hash (edited)".into()));
            break;
        }
        prev = r.hash.clone();
        hashes.push(r.hash);
        v.last_seq = r.seq;
    }
    let mut valid: Vec<&Checkpoint> = Vec::new();
    for c in checkpoints {
        let trusted = spans.iter().any(|sp| {
            sp.key == c.key
                && (sp.from..=sp.to).contains(&c.seq)
                && verifying_key(&sp.key).is_some_and(|k| c.valid(&k))
        });
        if trusted {
            valid.push(c);
        } else {
            v.bad_checkpoints.push(c.seq);
        }
    }
    valid.sort_by_key(|c| c.seq);
    let mut matched: u64 = 0;
    for c in valid {
        if c.seq == 0 {
            continue;
        }
        match hashes.get((c.seq - 1) as usize) {
            Some(h) if *h == c.head => matched = c.seq,
            Some(_) => {
                // Re-chained: consistent links, but not what was signed.
                let at = matched + 1;
                if v.first_bad.as_ref().is_none_or(|(s, _)| at < *s) {
                    v.first_bad = Some((
                        at,
                        format!(
                            "records {at}..={} differ from the signed checkpoint at seq {} (edited and re-chained)",
                            c.seq, c.seq
                        ),
                    ));
                }
                break;
            }
            None if v.first_bad.is_none() => {
                v.first_bad = Some((
                    v.last_seq + 1,
                    format!(
                        "the log ends at seq {} but a signed checkpoint covers seq {} (truncated or rolled back)",
                        v.last_seq, c.seq
                    ),
                ));
                break;
            }
            None => break,
        }
    }
    if matched > 0 {
        v.checkpoint = Some(matched);
    }
    v.unprotected = v.last_seq.saturating_sub(matched);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    /// `n` records with a checkpoint every `every`.
    fn log(n: u64, every: u64) -> (Vec<Record>, Vec<Checkpoint>) {
        let k = key();
        let mut prev = GENESIS.to_string();
        let mut recs = Vec::new();
        let mut cps = Vec::new();
        for seq in 1..=n {
            let r = Record::seal(
                seq,
                1_000 + seq,
                "uid 1000 (pid 1)",
                "scale",
                serde_json::json!({ "agent": format!("a{}", seq % 7), "replicas": seq % 5 }),
                "ok",
                &prev,
            );
            prev = r.hash.clone();
            if seq % every == 0 {
                cps.push(Checkpoint::sign(&k, seq, &r.hash, 1_000 + seq));
            }
            recs.push(r);
        }
        (recs, cps)
    }

    fn bytes(recs: &[Record]) -> Vec<u8> {
        recs.iter()
            .map(Record::line)
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn a_clean_log_verifies_and_counts_the_unprotected_tail() {
        let (recs, cps) = log(25, 10);
        let v = verify(&bytes(&recs), &cps, &key().verifying_key());
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.records, 25);
        assert_eq!(v.checkpoint, Some(20));
        assert_eq!(v.unprotected, 5);
        assert_eq!(v.torn_tail, None);
    }

    #[test]
    fn a_torn_last_line_is_a_crash_not_tampering() {
        let (recs, cps) = log(5, 2);
        let mut b = bytes(&recs);
        b.extend_from_slice(b"{\"seq\":6,\"ts\":1");
        let v = verify(&b, &cps, &key().verifying_key());
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.torn_tail, Some(15));
        assert_eq!(v.last_seq, 5);
    }

    #[test]
    fn an_added_field_is_tampering() {
        let (recs, cps) = log(5, 5);
        let text = String::from_utf8(bytes(&recs)).expect("utf-8");
        let forged: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let l = if i == 2 {
                    l.replacen(
                        "\"result\":\"ok\"",
                        "\"result\":\"ok\",\"approved_by\":\"cto\"",
                        1,
                    )
                } else {
                    l.to_string()
                };
                format!("{l}\n")
            })
            .collect();
        let v = verify(forged.as_bytes(), &cps, &key().verifying_key());
        assert_eq!(v.first_bad.map(|b| b.0), Some(3));
    }

    #[test]
    fn a_checkpoint_from_another_key_is_not_trusted() {
        let (recs, _) = log(10, 5);
        let forged = Checkpoint::sign(&SigningKey::from_bytes(&[9u8; 32]), 10, &recs[9].hash, 1);
        let v = verify(&bytes(&recs), &[forged], &key().verifying_key());
        assert_eq!(v.bad_checkpoints, vec![10]);
        assert_eq!(v.checkpoint, None);
        assert_eq!(v.unprotected, 10);
        // A tampered signature too.
        let (_, mut cps) = log(10, 5);
        cps[0].head = recs[3].hash.clone();
        let v = verify(&bytes(&recs), &cps, &key().verifying_key());
        assert_eq!(v.bad_checkpoints, vec![5]);
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Edit(usize),
        Delete(usize),
        Swap(usize),
        Duplicate(usize),
        /// Keep only this many records (below the last checkpoint).
        Truncate(usize),
        /// Edit one record and recompute every hash after it (no key).
        Rechain(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (0usize..60).prop_map(Mutation::Edit),
            (0usize..60).prop_map(Mutation::Delete),
            (0usize..59).prop_map(Mutation::Swap),
            (0usize..60).prop_map(Mutation::Duplicate),
            (0usize..50).prop_map(Mutation::Truncate),
            (0usize..50).prop_map(Mutation::Rechain),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn every_mutation_is_caught_and_named(m in mutation(), field in 0u8..4) {
            // 60 records, checkpoints every 10 (the last at 60).
            let (mut recs, cps) = log(60, 10);
            let trusted = key().verifying_key();
            let named: u64 = match m.clone() {
                Mutation::Edit(i) => {
                    match field {
                        0 => recs[i].actor = "uid 0 (pid 1)".into(),
                        1 => recs[i].action = "stop".into(),
                        2 => recs[i].args = serde_json::json!({ "agent": "other" }),
                        _ => recs[i].ts += 1,
                    }
                    (i + 1) as u64
                }
                Mutation::Delete(i) => {
                    recs.remove(i);
                    (i + 1) as u64
                }
                Mutation::Swap(i) => {
                    recs.swap(i, i + 1);
                    (i + 1) as u64
                }
                Mutation::Duplicate(i) => {
                    let r = recs[i].clone();
                    recs.insert(i + 1, r);
                    (i + 2) as u64
                }
                Mutation::Truncate(n) => {
                    recs.truncate(n);
                    (n + 1) as u64
                }
                Mutation::Rechain(i) => {
                    recs[i].actor = "uid 0 (pid 1)".into();
                    let mut prev = if i == 0 { GENESIS.to_string() } else { recs[i - 1].hash.clone() };
                    for r in recs.iter_mut().skip(i) {
                        r.prev = prev.clone();
                        r.hash = r.compute_hash();
                        prev = r.hash.clone();
                    }
                    // Named: the first record after the last checkpoint it
                    // still matches.
                    (i as u64 / 10) * 10 + 1
                }
            };
            let v = verify(&bytes(&recs), &cps, &trusted);
            let (seq, why) = v.first_bad.clone().expect("caught");
            prop_assert_eq!(seq, named, "{:?}: {}", m, why);
        }
    }

    #[test]
    fn trust_follows_key_rotations_both_ways_within_each_keys_span() {
        let k: Vec<SigningKey> = (1..=3u8)
            .map(|b| SigningKey::from_bytes(&[b; 32]))
            .collect();
        let (recs, _) = log(30, 1000);
        let head = |seq: u64| recs[(seq - 1) as usize].hash.clone();
        let cp = |key: &SigningKey, seq: u64| Checkpoint::sign(key, seq, &head(seq), seq);
        // k0 signs up to 10, rotates to k1; k1 signs up to 20, rotates to k2.
        let r1 = Rotation::sign(&k[0], cp(&k[0], 10), &k[1]);
        let r2 = Rotation::sign(&k[1], cp(&k[1], 20), &k[2]);
        assert!(r1.valid() && r2.valid());
        let text: String = recs.iter().map(Record::line).collect();
        let cps = vec![
            cp(&k[0], 5),
            cp(&k[0], 10),
            cp(&k[1], 15),
            cp(&k[1], 20),
            cp(&k[2], 30),
        ];
        for anchor in &k {
            let (spans, bad) = key_spans(
                &hex(anchor.verifying_key().as_bytes()),
                &[r2.clone(), r1.clone()],
            );
            assert!(bad.is_empty());
            assert_eq!(spans.len(), 3);
            let v = verify_spans(text.as_bytes(), &cps, &spans);
            assert!(v.ok(), "{v:?}");
            assert_eq!(v.checkpoint, Some(30));
            assert!(v.bad_checkpoints.is_empty(), "{v:?}");
        }
        // A key signing outside its span is not trusted there.
        let (spans, _) = key_spans(
            &hex(k[2].verifying_key().as_bytes()),
            &[r1.clone(), r2.clone()],
        );
        let v = verify_spans(text.as_bytes(), &[cp(&k[0], 25)], &spans);
        assert_eq!(v.bad_checkpoints, vec![25]);
        // A rotation not signed by the old key breaks the chain there: the
        // keys it names are trusted no further from the old one.
        let mut forged = r2.clone();
        forged.by_old = "00".repeat(64);
        let (spans, bad) = key_spans(&hex(k[0].verifying_key().as_bytes()), &[r1, forged]);
        assert_eq!(bad, vec![20]);
        assert!(
            spans
                .iter()
                .all(|s| s.key != hex(k[2].verifying_key().as_bytes()))
        );
    }
}
