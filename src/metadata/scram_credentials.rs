//! Users' SCRAM credentials as the metadata log holds them (Kafka's UserScramCredentialRecord
//! and RemoveUserScramCredentialRecord, replayed on every node), and the pure planning of
//! AlterUserScramCredentials and answering of DescribeUserScramCredentials against them, with
//! Kafka's rules and messages (`ScramControlManager`, `ScramImage.describe`).
//!
//! Pure data and functions: no I/O. Never holds a password or a salted password: a broker
//! turns the salted password a client sends into the stored and server keys before the change
//! is forwarded to the controller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::image::ApplyError;
use super::records::MetadataRecord;
use crate::security::scram::{CredentialSource, ScramCredential, ScramMechanism};

/// Most credentials the cluster keeps: AlterUserScramCredentials may not grow the image (held
/// on every node) without bound.
pub(crate) const MAX_SCRAM_CREDENTIALS: usize = 100_000;

/// Every user's credentials, by mechanism.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScramCredentials {
    by_user: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    count: usize,
}

impl CredentialSource for ScramCredentials {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.by_user.get(user)?.get(&mechanism).cloned()
    }
}

impl ScramCredentials {
    pub(crate) fn contains(&self, user: &str, mechanism: ScramMechanism) -> bool {
        self.by_user.get(user).is_some_and(|m| m.contains_key(&mechanism))
    }

    /// Replays one of the two SCRAM records; any other record is not this map's.
    pub(crate) fn apply(&mut self, record: &MetadataRecord) -> Result<(), ApplyError> {
        match record {
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                salt,
                stored_key,
                server_key,
                iterations,
            } => {
                let m = mechanism_of(*mechanism)?;
                let credential = ScramCredential {
                    salt: salt.clone(),
                    stored_key: stored_key.clone(),
                    server_key: server_key.clone(),
                    iterations: *iterations,
                };
                if self
                    .by_user
                    .entry(name.clone())
                    .or_default()
                    .insert(m, credential)
                    .is_none()
                {
                    self.count += 1;
                }
                Ok(())
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                let m = mechanism_of(*mechanism)?;
                let user = self.by_user.get_mut(name);
                if user.and_then(|u| u.remove(&m)).is_none() {
                    return Err(ApplyError(format!("no {} credential of {name} to remove", m.name())));
                }
                self.count -= 1;
                if self.by_user.get(name).is_some_and(BTreeMap::is_empty) {
                    self.by_user.remove(name);
                }
                Ok(())
            }
            other => Err(ApplyError(format!("not a SCRAM record: {other:?}"))),
        }
    }

    /// The records that replay into these credentials (for a snapshot).
    pub(crate) fn to_records(&self) -> impl Iterator<Item = MetadataRecord> + '_ {
        self.by_user.iter().flat_map(|(name, mechanisms)| {
            mechanisms
                .iter()
                .map(move |(m, c)| MetadataRecord::UserScramCredential {
                    name: name.clone(),
                    mechanism: m.type_code(),
                    salt: c.salt.clone(),
                    stored_key: c.stored_key.clone(),
                    server_key: c.server_key.clone(),
                    iterations: c.iterations,
                })
        })
    }
}

fn mechanism_of(code: i8) -> Result<ScramMechanism, ApplyError> {
    ScramMechanism::from_type_code(code).ok_or_else(|| ApplyError(format!("unknown SCRAM mechanism {code}")))
}

/// A credential to set: the keys a broker derived from the client's salted password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScramUpsertion {
    pub(crate) name: String,
    /// The request's type code; 0 or unknown is refused.
    pub(crate) mechanism: i8,
    pub(crate) iterations: i32,
    pub(crate) salt: Vec<u8>,
    pub(crate) stored_key: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramUpsertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramUpsertion")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScramDeletion {
    pub(crate) name: String,
    pub(crate) mechanism: i8,
}

/// Why a user's part of AlterUserScramCredentials or DescribeUserScramCredentials was refused
/// (Kafka's codes in `crate::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub(crate) enum ScramCredentialError {
    #[error("A user credential cannot be altered twice in the same request")]
    AlteredTwice,
    #[error("{0}")]
    Unacceptable(String),
    #[error("Unknown SCRAM mechanism")]
    UnknownMechanism,
    #[error("Attempt to delete a user credential that does not exist")]
    DeleteMissing,
    #[error("Attempt to describe a user credential that does not exist: {0}")]
    DescribeMissing(String),
    #[error("Cannot describe SCRAM credentials for the same user twice in a single request: {0}")]
    DescribedTwice(String),
}

/// One user's outcome of AlterUserScramCredentials.
pub(crate) type AlterResult = (String, Result<(), ScramCredentialError>);

/// Kafka's checks of a user name and mechanism (`validateScramUsernameAndMechanism`).
fn check_name_and_mechanism(name: &str, mechanism: i8) -> Result<ScramMechanism, ScramCredentialError> {
    if name.is_empty() {
        return Err(ScramCredentialError::Unacceptable("Username must not be empty".into()));
    }
    ScramMechanism::from_type_code(mechanism).ok_or(ScramCredentialError::UnknownMechanism)
}

/// AlterUserScramCredentials: the records to commit and each user's outcome. As Kafka: a user
/// named twice in one request (even for two mechanisms) is refused whole; deletions are checked
/// against the image; iterations must be within 4096..=16384.
pub(crate) fn plan_alter(
    credentials: &ScramCredentials,
    deletions: &[ScramDeletion],
    upsertions: &[ScramUpsertion],
) -> (Vec<MetadataRecord>, Vec<AlterResult>) {
    let mut errors: BTreeMap<String, ScramCredentialError> = BTreeMap::new();
    let mut deletes: BTreeMap<String, ScramMechanism> = BTreeMap::new();
    let mut upserts: BTreeMap<String, (ScramMechanism, &ScramUpsertion)> = BTreeMap::new();
    for d in deletions {
        if errors.contains_key(&d.name) {
            continue;
        }
        if deletes.remove(&d.name).is_some() {
            errors.insert(d.name.clone(), ScramCredentialError::AlteredTwice);
            continue;
        }
        let checked =
            check_name_and_mechanism(&d.name, d.mechanism).and_then(|m| match credentials.contains(&d.name, m) {
                true => Ok(m),
                false => Err(ScramCredentialError::DeleteMissing),
            });
        match checked {
            Ok(m) => _ = deletes.insert(d.name.clone(), m),
            Err(e) => _ = errors.insert(d.name.clone(), e),
        }
    }
    for u in upsertions {
        if errors.contains_key(&u.name) {
            continue;
        }
        if deletes.remove(&u.name).is_some() || upserts.remove(&u.name).is_some() {
            errors.insert(u.name.clone(), ScramCredentialError::AlteredTwice);
            continue;
        }
        let checked = check_name_and_mechanism(&u.name, u.mechanism).and_then(|m| {
            ScramMechanism::check_iterations(u.iterations)
                .map(|()| m)
                .map_err(|e| ScramCredentialError::Unacceptable(e.into()))
        });
        match checked {
            Ok(m) => _ = upserts.insert(u.name.clone(), (m, u)),
            Err(e) => _ = errors.insert(u.name.clone(), e),
        }
    }
    let added = upserts
        .iter()
        .filter(|(name, (m, _))| !credentials.contains(name, *m))
        .count();
    if credentials.count + added > MAX_SCRAM_CREDENTIALS + deletes.len() {
        for name in upserts.keys() {
            errors.insert(
                name.clone(),
                ScramCredentialError::Unacceptable(format!(
                    "The cluster holds at most {MAX_SCRAM_CREDENTIALS} SCRAM credentials"
                )),
            );
        }
        upserts.clear();
    }
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (name, m) in deletes {
        records.push(MetadataRecord::RemoveUserScramCredential {
            name: name.clone(),
            mechanism: m.type_code(),
        });
        results.push((name, Ok(())));
    }
    for (name, (m, u)) in upserts {
        records.push(MetadataRecord::UserScramCredential {
            name: name.clone(),
            mechanism: m.type_code(),
            salt: u.salt.clone(),
            stored_key: u.stored_key.clone(),
            server_key: u.server_key.clone(),
            iterations: u.iterations,
        });
        results.push((name, Ok(())));
    }
    results.extend(errors.into_iter().map(|(name, e)| (name, Err(e))));
    (records, results)
}

/// One user's answer to DescribeUserScramCredentials: (mechanism code, iterations) pairs.
pub(crate) type DescribeResult = (String, Result<Vec<(i8, i32)>, ScramCredentialError>);

/// DescribeUserScramCredentials: every user with a credential when `users` is None or empty,
/// else those named (a name given twice is refused, one without credentials is not found).
pub(crate) fn describe(credentials: &ScramCredentials, users: Option<&[String]>) -> Vec<DescribeResult> {
    let mut named: BTreeMap<&str, bool> = BTreeMap::new();
    match users {
        Some(users) if !users.is_empty() => {
            for u in users {
                named
                    .entry(u.as_str())
                    .and_modify(|twice| *twice = true)
                    .or_insert(false);
            }
        }
        _ => named.extend(credentials.by_user.keys().map(|u| (u.as_str(), false))),
    }
    named
        .into_iter()
        .map(|(user, twice)| {
            let result = match (twice, credentials.by_user.get(user)) {
                (true, _) => Err(ScramCredentialError::DescribedTwice(user.to_string())),
                (false, Some(ms)) if !ms.is_empty() => {
                    Ok(ms.iter().map(|(m, c)| (m.type_code(), c.iterations)).collect())
                }
                (false, _) => Err(ScramCredentialError::DescribeMissing(user.to_string())),
            };
            (user.to_string(), result)
        })
        .collect()
}

/// The first credentials of a new cluster (Kafka's `kafka-storage format --add-scram`), from
/// `sasl.scram.bootstrap.credentials`: `MECHANISM=[name=...,password=...(,iterations=N)?]`
/// entries, separated by spaces or ';'. A value may be double-quoted (to hold ',' or ']').
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BootstrapCredential {
    pub(crate) mechanism: ScramMechanism,
    pub(crate) name: String,
    pub(crate) password: String,
    pub(crate) iterations: i32,
}

impl std::fmt::Debug for BootstrapCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapCredential")
            .field("mechanism", &self.mechanism)
            .field("name", &self.name)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Kafka's default iterations for `kafka-configs` and `kafka-storage --add-scram`.
pub(crate) const DEFAULT_ITERATIONS: i32 = 4096;

pub(crate) fn parse_bootstrap(s: &str) -> Result<Vec<BootstrapCredential>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
    while !rest.is_empty() {
        let (mechanism, after) = rest
            .split_once("=[")
            .ok_or_else(|| format!("expected MECHANISM=[name=...,password=...] at '{rest}'"))?;
        let mechanism = ScramMechanism::from_name(mechanism.trim())
            .ok_or_else(|| format!("'{}' is not SCRAM-SHA-256 or SCRAM-SHA-512", mechanism.trim()))?;
        let (fields, after) = bracket_fields(after)?;
        let mut name = None;
        let mut password = None;
        let mut iterations = DEFAULT_ITERATIONS;
        for (k, v) in fields {
            match k.as_str() {
                "name" => name = Some(v),
                "password" => password = Some(v),
                "iterations" => iterations = v.parse().map_err(|_| format!("iterations '{v}' is not a number"))?,
                other => return Err(format!("unknown field '{other}' (name, password, iterations)")),
            }
        }
        let name = name.filter(|n| !n.is_empty()).ok_or("a credential needs a name")?;
        let password = password
            .filter(|p| !p.is_empty())
            .ok_or("a credential needs a password")?;
        ScramMechanism::check_iterations(iterations).map_err(|e| format!("{name}: {e} (4096..16384)"))?;
        if out
            .iter()
            .any(|c: &BootstrapCredential| c.name == name && c.mechanism == mechanism)
        {
            return Err(format!("{name} has two {} credentials", mechanism.name()));
        }
        out.push(BootstrapCredential {
            mechanism,
            name,
            password,
            iterations,
        });
        rest = after.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
    }
    Ok(out)
}

type Fields = Vec<(String, String)>;

/// `k=v,k="v"...]` up to the closing bracket: the fields and what follows the bracket.
fn bracket_fields(s: &str) -> Result<(Fields, &str), String> {
    let mut fields = Vec::new();
    let mut rest = s;
    loop {
        let (key, after) = rest.split_once('=').ok_or("expected key=value inside [...]")?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').ok_or("unterminated quote")?;
                (quoted[..end].to_string(), &quoted[end + 1..])
            }
            None => {
                let end = after.find([',', ']']).ok_or("missing ']'")?;
                (after[..end].to_string(), &after[end..])
            }
        };
        fields.push((key.trim().to_string(), value));
        if let Some(next) = after.strip_prefix(',') {
            rest = next;
        } else if let Some(next) = after.strip_prefix(']') {
            return Ok((fields, next));
        } else {
            return Err("expected ',' or ']' after a value".into());
        }
    }
}

impl BootstrapCredential {
    /// The record that stores it, with a fresh random salt; None if the OS has no randomness.
    pub(crate) fn record(&self) -> Option<MetadataRecord> {
        let salt = crate::security::scram::random_bytes(32)?;
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, self.iterations);
        let c = m.credential(&salt, &salted, self.iterations);
        Some(MetadataRecord::UserScramCredential {
            name: self.name.clone(),
            mechanism: m.type_code(),
            salt: c.salt,
            stored_key: c.stored_key,
            server_key: c.server_key,
            iterations: c.iterations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: i8 = 1;
    const SHA512: i8 = 2;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramUpsertion {
        ScramUpsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            stored_key: b"stored".to_vec(),
            server_key: b"server".to_vec(),
        }
    }

    fn delete(name: &str, mechanism: i8) -> ScramDeletion {
        ScramDeletion {
            name: name.into(),
            mechanism,
        }
    }

    fn with(records: &[MetadataRecord]) -> ScramCredentials {
        let mut c = ScramCredentials::default();
        for r in records {
            c.apply(r).unwrap();
        }
        c
    }

    #[test]
    fn upsert_then_delete_round_trips_through_records() {
        let (records, results) = plan_alter(&ScramCredentials::default(), &[], &[upsert("alice", SHA256, 8192)]);
        assert_eq!(results, [("alice".to_string(), Ok(()))]);
        let creds = with(&records);
        let c = creds.credential("alice", ScramMechanism::Sha256).unwrap();
        assert_eq!((c.iterations, c.stored_key.as_slice()), (8192, &b"stored"[..]));
        assert_eq!(with(&creds.to_records().collect::<Vec<_>>()), creds);
        assert_eq!(
            describe(&creds, None),
            [("alice".to_string(), Ok(vec![(SHA256, 8192)]))]
        );

        let (records, results) = plan_alter(&creds, &[delete("alice", SHA256)], &[]);
        assert_eq!(results, [("alice".to_string(), Ok(()))]);
        let mut after = creds.clone();
        for r in &records {
            after.apply(r).unwrap();
        }
        assert_eq!(after, ScramCredentials::default());
        assert!(
            after.apply(&records[0]).is_err(),
            "removing twice contradicts the image"
        );
    }

    #[test]
    fn credential_records_survive_the_logs_json() {
        let (records, _) = plan_alter(
            &ScramCredentials::default(),
            &[delete("x", SHA256)],
            &[upsert("a", SHA512, 9999)],
        );
        let remove = MetadataRecord::RemoveUserScramCredential {
            name: "a".into(),
            mechanism: SHA512,
        };
        for record in records.iter().chain([&remove]) {
            let json = serde_json::to_string(record).unwrap();
            assert_eq!(
                &serde_json::from_str::<MetadataRecord>(&json).unwrap(),
                record,
                "{json}"
            );
        }
    }

    #[test]
    fn kafkas_refusals_per_user() {
        let creds = with(&plan_alter(&ScramCredentials::default(), &[], &[upsert("bob", SHA512, 4096)]).0);
        let (records, results) = plan_alter(
            &creds,
            &[delete("carol", SHA256), delete("", SHA256), delete("bob", 0)],
            &[
                upsert("dave", SHA256, 4095),
                upsert("erin", SHA256, 16385),
                upsert("frank", SHA256, 4096),
                upsert("frank", SHA512, 4096),
                upsert("gina", 7, 4096),
            ],
        );
        assert!(records.is_empty(), "{records:?}");
        let e = |name: &str| results.iter().find(|(n, _)| n == name).unwrap().1.clone().unwrap_err();
        assert_eq!(e("carol"), ScramCredentialError::DeleteMissing);
        assert_eq!(
            e(""),
            ScramCredentialError::Unacceptable("Username must not be empty".into())
        );
        assert_eq!(e("bob"), ScramCredentialError::UnknownMechanism);
        assert_eq!(e("dave").to_string(), "Too few iterations");
        assert_eq!(e("erin").to_string(), "Too many iterations");
        assert_eq!(e("frank"), ScramCredentialError::AlteredTwice);
        assert_eq!(e("gina"), ScramCredentialError::UnknownMechanism);
        assert_eq!(results.len(), 7);
    }

    #[test]
    fn describe_names_missing_and_duplicate_users() {
        let creds = with(
            &plan_alter(
                &ScramCredentials::default(),
                &[],
                &[upsert("a", SHA256, 4096), upsert("b", SHA512, 5000)],
            )
            .0,
        );
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = describe(&creds, Some(&names(&["b", "x", "a", "a"])));
        assert_eq!(
            got,
            [
                ("a".to_string(), Err(ScramCredentialError::DescribedTwice("a".into()))),
                ("b".to_string(), Ok(vec![(SHA512, 5000)])),
                ("x".to_string(), Err(ScramCredentialError::DescribeMissing("x".into()))),
            ]
        );
        assert_eq!(describe(&creds, Some(&[])).len(), 2);
    }

    #[test]
    fn bootstrap_credentials_parse_kafkas_add_scram_form() {
        let parsed = parse_bootstrap(
            "SCRAM-SHA-256=[name=admin,password=admin-secret]; SCRAM-SHA-512=[name=admin,iterations=8192,password=\"a,b]c\"]",
        )
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (parsed[0].iterations, parsed[0].password.as_str()),
            (4096, "admin-secret")
        );
        assert_eq!((parsed[1].iterations, parsed[1].password.as_str()), (8192, "a,b]c"));
        assert!(!format!("{parsed:?}").contains("secret"));
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=100]",
            "SCRAM-SHA-256=[name=a,password=b",
            "SCRAM-SHA-256=[name=a,password=b] SCRAM-SHA-256=[name=a,password=c]",
            "SCRAM-SHA-256=[name=a,pass=b]",
        ] {
            assert!(parse_bootstrap(bad).is_err(), "{bad}");
        }
        assert!(parse_bootstrap("").unwrap().is_empty());
        // The record's keys are those of the password.
        let MetadataRecord::UserScramCredential {
            salt,
            stored_key,
            iterations,
            ..
        } = parsed[0].record().unwrap()
        else {
            panic!()
        };
        let m = ScramMechanism::Sha256;
        let expected = m.credential(
            &salt,
            &m.salted_password(b"admin-secret", &salt, iterations),
            iterations,
        );
        assert_eq!(stored_key, expected.stored_key);
    }
}
