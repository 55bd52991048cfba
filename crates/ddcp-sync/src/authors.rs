//! Whose changes a remote may bring here: a per-remote policy (`ddcp remote add NAME KEY
//! --authors direct|any|SITE,...`). ddcp applies only what it pulls, so this is where a
//! database decides whose writes it accepts. The remote's own site id is proven by its Status
//! (written under its record's owner key); a relayed change's author is only what the relay
//! says (cr-sqlite site ids are claims), so a list of authors trusts the relays.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::ids::SiteId;

/// Whose changes a remote may bring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuthorPolicy {
    /// Anyone's, relayed ones included (the default).
    #[default]
    Any,
    /// Only those the remote wrote itself.
    Direct,
    /// Only those these sites wrote.
    Sites(BTreeSet<SiteId>),
}

/// Why a policy does not parse. Meant for the user who typed it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--authors takes direct, any, or site ids (32 hex digits) separated by commas; {0:?} is none of them"
)]
pub struct BadAuthorPolicy(pub String);

impl AuthorPolicy {
    /// Whether a change written by `author` may come from the remote whose site is `remote`.
    pub fn admits(&self, author: &SiteId, remote: &SiteId) -> bool {
        match self {
            AuthorPolicy::Any => true,
            AuthorPolicy::Direct => author == remote,
            AuthorPolicy::Sites(sites) => sites.contains(author),
        }
    }
}

impl FromStr for AuthorPolicy {
    type Err = BadAuthorPolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "any" => return Ok(AuthorPolicy::Any),
            "direct" => return Ok(AuthorPolicy::Direct),
            _ => {}
        }
        let bad = || BadAuthorPolicy(crate::text::printable(text, 80));
        let sites = text
            .split(',')
            .map(|site| {
                let bytes = hex::decode(site.trim()).map_err(|_| bad())?;
                SiteId::from_slice(&bytes).map_err(|_| bad())
            })
            .collect::<Result<BTreeSet<SiteId>, _>>()?;
        Ok(AuthorPolicy::Sites(sites))
    }
}

impl fmt::Display for AuthorPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthorPolicy::Any => f.write_str("any"),
            AuthorPolicy::Direct => f.write_str("direct"),
            AuthorPolicy::Sites(sites) => {
                let sites: Vec<String> = sites.iter().map(SiteId::to_string).collect();
                f.write_str(&sites.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
    const B: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";

    #[test]
    fn policies_parse_print_and_admit() {
        let (a, b) = (SiteId([10; 16]), SiteId([11; 16]));
        let any: AuthorPolicy = "any".parse().unwrap();
        let direct: AuthorPolicy = "direct".parse().unwrap();
        let list: AuthorPolicy = format!("{B}, {A}").parse().unwrap();
        assert_eq!(list.to_string(), format!("{A},{B}"));
        assert_eq!(list.to_string().parse::<AuthorPolicy>().unwrap(), list);
        assert!(any.admits(&a, &b));
        assert!(direct.admits(&b, &b) && !direct.admits(&a, &b));
        assert!(list.admits(&a, &b) && !list.admits(&SiteId([12; 16]), &a));
        for bad in ["", "some", "0a0a", &format!("{A},")] {
            assert!(bad.parse::<AuthorPolicy>().is_err(), "{bad}");
        }
    }
}
