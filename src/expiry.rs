//! The expiry of everything JS7 trusts (section 6 of the JS7 notes): every CA and every
//! unrevoked certificate of the state, with the days left, the JS7 component that depends on
//! it and what breaks, on which JS7 versions, when it expires.
//!
//! An expired signing or CA certificate stopped production schedules on JS7 before 2.5.13 /
//! 2.7.7 / 2.8.2 (every signed object was rejected, running orders blocked); later versions
//! accept expired certificates unless `js7.configuration.allow-expired-certificates = no`. An
//! expired TLS certificate breaks mutual TLS on every version.

use time::{Duration, OffsetDateTime};

use crate::store::{Store, StoreError};
use crate::x509::Profile;

/// What a certificate is to JS7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A root CA: in the truststores, and possibly in trusted-x509-keys.
    RootCa,
    /// An intermediate CA: issues instance and operator certificates; the direct issuer of
    /// operator certificates sits in trusted-x509-keys.
    IntermediateCa,
    /// The TLS certificate of JOC Cockpit, a Controller or an Agent.
    Tls,
    /// An operator's signing certificate.
    Signing,
}

impl Role {
    fn of(profile: Profile) -> Self {
        match profile {
            Profile::Root => Self::RootCa,
            Profile::Intermediate => Self::IntermediateCa,
            Profile::Server | Profile::Client | Profile::ServerClient => Self::Tls,
            Profile::Signing => Self::Signing,
        }
    }

    /// The JS7 component that depends on a certificate of this role.
    pub fn depends(self) -> &'static str {
        match self {
            Self::RootCa => {
                "https-truststore.p12 of JOC Cockpit, Controllers and Agents (and trusted-x509-keys where it signs operators directly)"
            }
            Self::IntermediateCa => {
                "the TLS chains of the instances it issued, and trusted-x509-keys of Controllers and Agents as the direct issuer of operator certificates"
            }
            Self::Tls => "https-keystore.p12 of the JS7 instance (mutual TLS)",
            Self::Signing => {
                "the operator's JOC Cockpit profile and every object the operator signed"
            }
        }
    }

    /// What breaks when a certificate of this role expires, and on which JS7 versions.
    pub fn breaks(self) -> &'static str {
        match self {
            Self::RootCa | Self::IntermediateCa => {
                "TLS: the certificates it issued end with it (hsmsign never issues past a CA's end), so mutual TLS fails on every JS7 version. Signatures: JS7 up to 2.5.12, 2.6.x, 2.7.6 and 2.8.1 rejects every object signed under it and blocks running orders; before 2.5.9 one expired file in trusted-x509-keys disables X.509 verification altogether; from 2.5.13, 2.7.7, 2.8.2 and 2.9.0 only with allow-expired-certificates = no"
            }
            Self::Tls => {
                "mutual TLS to and from the instance fails on every JS7 version (JOC Cockpit, Controller and Agent lose each other)"
            }
            Self::Signing => {
                "JS7 up to 2.5.12, 2.6.x, 2.7.6 and 2.8.1 rejects every object it signed, also deployed ones, and blocks running orders; from 2.5.13, 2.7.7, 2.8.2 and 2.9.0 only with allow-expired-certificates = no"
            }
        }
    }
}

/// One certificate and its end.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Item {
    /// `ca` for a CA of this appliance, `certificate` for an issued certificate.
    pub kind: &'static str,
    /// The CA's name, or the certificate's serial.
    pub name: String,
    /// Subject DN.
    pub subject: String,
    /// Profile (`root`, `intermediate`, `server`, ..., `signing`).
    pub profile: String,
    /// What it is to JS7.
    pub role: Role,
    /// The end of its validity (RFC 3339, UTC).
    pub not_after: String,
    /// Whole days left at the time of the report (negative: expired that many days ago).
    pub days_left: i64,
    /// True once expired.
    pub expired: bool,
    /// What depends on it.
    pub depends: &'static str,
    /// What breaks when it expires.
    pub breaks: &'static str,
    #[serde(skip)]
    end: OffsetDateTime,
}

impl Item {
    /// True if it ends at or before `now + within` (expired ones included).
    pub fn within(&self, now: OffsetDateTime, within: Duration) -> bool {
        self.end <= now + within
    }
}

/// Whole days from `now` to `end`: a certificate ending in 47 hours has 1 day left, one that
/// ended an hour ago is 1 day past (-1).
fn days_left(end: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let left = end - now;
    let days = left.whole_days();
    if left.is_negative() && left != Duration::days(days) {
        days - 1
    } else {
        days
    }
}

/// Every CA and every unrevoked issued certificate of `store` as seen at `now`, soonest end
/// first. Revoked certificates are left out: nothing may depend on them any more. An
/// intermediate CA made here is listed once, as a CA.
pub fn report(store: &Store, now: OffsetDateTime) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let cas = store.cas()?;
    for ca in &cas {
        let profile = if ca.parent.is_some() || !self_issued(&ca.certificate_der) {
            Profile::Intermediate
        } else {
            Profile::Root
        };
        let role = Role::of(profile);
        items.push(Item {
            kind: "ca",
            name: ca.name.clone(),
            subject: ca.subject.clone(),
            profile: profile.name().into(),
            role,
            not_after: crate::x509::format_time(ca.not_after),
            days_left: days_left(ca.not_after, now),
            expired: ca.not_after <= now,
            depends: role.depends(),
            breaks: role.breaks(),
            end: ca.not_after,
        });
    }
    for cert in store.certificates(None)? {
        if cas.iter().any(|c| c.fingerprint == cert.fingerprint)
            || store.revocation(&cert.serial)?.is_some()
        {
            continue;
        }
        // A profile this version does not know (a newer database is refused at open) is shown
        // as what the certificate is most likely to be: a TLS certificate.
        let profile = Profile::parse(&cert.profile).unwrap_or(Profile::ServerClient);
        let role = Role::of(profile);
        items.push(Item {
            kind: "certificate",
            name: cert.serial.to_string(),
            subject: cert.subject.clone(),
            profile: cert.profile.clone(),
            role,
            not_after: crate::x509::format_time(cert.not_after),
            days_left: days_left(cert.not_after, now),
            expired: cert.not_after <= now,
            depends: role.depends(),
            breaks: role.breaks(),
            end: cert.not_after,
        });
    }
    items.sort_by_key(|i| i.end);
    Ok(items)
}

/// Subject equals issuer (compared as DER): a root.
fn self_issued(der: &[u8]) -> bool {
    use der::{Decode, Encode};
    x509_cert::Certificate::from_der(der).is_ok_and(|c| {
        let t = c.tbs_certificate();
        t.subject().to_der().ok() == t.issuer().to_der().ok()
    })
}

/// Parse a window such as `90d`, `90` (days) or `12w`: at least one day, at most 100 years.
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, 'd' | 'D')) => (&t[..i], 1),
        Some((i, 'w' | 'W')) => (&t[..i], 7),
        _ => (t, 1),
    };
    let bad = || {
        format!(
            "`{}` is not a window of days: give e.g. 90d, 30 or 12w",
            crate::x509::limits::escape_for_display(t)
        )
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let days = n.checked_mul(unit).filter(|d| (0..=36_525).contains(d));
    match days {
        Some(d) => Ok(Duration::days(d)),
        None => Err(format!(
            "`{t}` is longer than 100 years: give a window of at most 36525 days"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_window("90d"), Ok(Duration::days(90)));
        assert_eq!(parse_window("30"), Ok(Duration::days(30)));
        assert_eq!(parse_window("2w"), Ok(Duration::days(14)));
        assert_eq!(parse_window("0d"), Ok(Duration::days(0)));
        for bad in [
            "",
            "d",
            "-3d",
            "1.5d",
            "9999999999999999999999d",
            "40000d",
            "3m",
        ] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_left_rounds_toward_the_end() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(100);
        assert_eq!(days_left(now + Duration::hours(47), now), 1);
        assert_eq!(days_left(now + Duration::days(2), now), 2);
        assert_eq!(days_left(now - Duration::hours(1), now), -1);
        assert_eq!(days_left(now - Duration::days(3), now), -3);
    }
}
