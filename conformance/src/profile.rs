//! Broker profiles (`--broker-profile FILE`): what cannot be discovered over the wire.

use std::collections::BTreeMap;
use std::path::Path;

use include_dir::{Dir, include_dir};
use serde::Deserialize;

use crate::version::Version;

/// The profiles in `conformance/brokers/`, built in.
static BUILT_IN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/brokers");

/// A broker profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Broker name and version, for reports.
    #[serde(default)]
    pub name: Option<String>,
    /// A topic the broker refuses to let the runner publish or subscribe to (available to
    /// scenarios as `{refused_topic}`; scenarios needing it require `refused-topic`).
    #[serde(default)]
    pub refused_topic: Option<String>,
    /// User name for every connection (overridden by `--username`).
    #[serde(default)]
    pub username: Option<String>,
    /// Password for every connection (overridden by `--password`).
    #[serde(default)]
    pub password: Option<String>,
    /// Limits, e.g. `max_qos = 1`, `max_packet_size = 65536`, `max_keep_alive = 60`.
    #[serde(default)]
    pub limits: BTreeMap<String, u64>,
    /// Capabilities the broker lacks (`retain`, `qos2`, `wildcard-subscriptions`,
    /// `shared-subscriptions`, `subscription-identifiers`, `will`, `websocket`, …).
    #[serde(default)]
    pub unsupported: Vec<String>,
    /// Known deviations.
    #[serde(default, rename = "deviation")]
    pub deviations: Vec<Deviation>,
}

/// A known deviation: a failure of these scenarios is reported as `known-deviation`. With
/// both `scenario` and `statement`, a run must be that scenario and cite that statement.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// Scenario id (or id prefix ending in `.`).
    #[serde(default)]
    pub scenario: Option<String>,
    /// Statement id: every scenario citing it.
    #[serde(default)]
    pub statement: Option<String>,
    /// Versions it applies to (default: all).
    #[serde(default)]
    pub versions: Vec<String>,
    /// Why the broker behaves this way.
    pub reason: String,
    /// What was observed.
    #[serde(default)]
    pub evidence: Option<String>,
    /// Do not run the scenario at all (it stops the broker, so running it would leave the
    /// rest of the run unchecked); it is reported as a known deviation without running.
    #[serde(default)]
    pub do_not_run: bool,
}

impl Profile {
    /// Load a profile file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// A profile file, or the name of a built-in one (`mosquitto`, `aedes`, …: the files of
    /// `conformance/brokers/`, embedded so that an installed binary has them).
    pub fn resolve(path_or_name: &Path) -> Result<Self, String> {
        if path_or_name.exists() {
            return Self::load(path_or_name);
        }
        let name = path_or_name.to_string_lossy();
        match BUILT_IN.get_file(format!("{name}.toml")) {
            Some(file) => Self::parse(&format!("built-in profile `{name}`"), file.contents_utf8().unwrap_or_default()),
            None => {
                let known: Vec<String> = Self::built_in_names();
                Err(format!("{name}: no such file, and not a built-in profile ({})", known.join(", ")))
            }
        }
    }

    /// Names of the built-in profiles.
    pub fn built_in_names() -> Vec<String> {
        let mut names: Vec<String> =
            BUILT_IN.files().filter_map(|f| f.path().file_stem().map(|s| s.to_string_lossy().into_owned())).collect();
        names.sort();
        names
    }

    fn parse(origin: &str, text: &str) -> Result<Self, String> {
        let profile: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| text.get(..s.start).unwrap_or_default().matches('\n').count() + 1);
            format!("{origin}:{line}: {}", e.message())
        })?;
        for deviation in &profile.deviations {
            if deviation.scenario.is_none() && deviation.statement.is_none() {
                return Err(format!("{origin}: a [[deviation]] needs `scenario` or `statement`"));
            }
            if deviation.do_not_run && (deviation.scenario.is_none() || deviation.evidence.is_none()) {
                return Err(format!("{origin}: `do_not_run` needs a `scenario` and its `evidence`"));
            }
            for v in &deviation.versions {
                v.parse::<Version>().map_err(|e| format!("{origin}: {e}"))?;
            }
        }
        Ok(profile)
    }

    /// The deviation covering this scenario run, if any.
    pub fn deviation_for(&self, scenario_id: &str, statements: &[String], version: Version) -> Option<&Deviation> {
        self.deviations.iter().find(|d| {
            let version_ok =
                d.versions.is_empty() || d.versions.iter().any(|v| v.parse::<Version>().ok() == Some(version));
            let scenario_ok = d
                .scenario
                .as_deref()
                .is_some_and(|s| s == scenario_id || (s.ends_with('.') && scenario_id.starts_with(s)));
            let statement_ok = d.statement.as_deref().is_some_and(|s| statements.iter().any(|id| id == s));
            // Both given: the entry is about that scenario's failure of that statement.
            let matches = match (&d.scenario, &d.statement) {
                (Some(_), Some(_)) => scenario_ok && statement_ok,
                _ => scenario_ok || statement_ok,
            };
            version_ok && matches
        })
    }

    /// The `do_not_run` deviation for this scenario run, if any (by scenario id only).
    pub fn not_to_run(&self, scenario_id: &str, version: Version) -> Option<&Deviation> {
        self.deviations.iter().find(|d| {
            d.do_not_run
                && d.scenario.as_deref() == Some(scenario_id)
                && (d.versions.is_empty() || d.versions.iter().any(|v| v.parse::<Version>().ok() == Some(version)))
        })
    }

    /// Deviations citing a statement id that the catalogue of their versions does not have
    /// (a typo, or a 3.1.1 number used for 5.0).
    pub fn unknown_statements(&self, catalogue: &crate::catalogue::Catalogue) -> Vec<String> {
        let mut unknown = Vec::new();
        for deviation in &self.deviations {
            let Some(id) = &deviation.statement else { continue };
            let versions: Vec<Version> = if deviation.versions.is_empty() {
                Version::ALL.to_vec()
            } else {
                deviation.versions.iter().filter_map(|v| v.parse().ok()).collect()
            };
            if !versions.iter().any(|v| catalogue.contains(*v, id)) {
                let labels: Vec<&str> = versions.iter().map(|v| v.label()).collect();
                unknown
                    .push(format!("deviation cites `{id}`, which is not a statement of MQTT {}", labels.join(" or ")));
            }
        }
        unknown
    }

    /// Whether the profile says the broker lacks `capability`.
    pub fn lacks(&self, capability: &str) -> bool {
        self.unsupported.iter().any(|c| c == capability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deviation_citing_a_statement_of_the_wrong_version_is_refused() {
        let catalogue = crate::catalogue::Catalogue::embedded().expect("catalogue");
        let profile: Profile = toml::from_str(
            "[[deviation]]\nstatement = \"MQTT-3.3.5-2\"\nversions = [\"5.0\"]\nreason = \"3.1.1 number used for 5.0\"\n\
             [[deviation]]\nstatement = \"MQTT-3.1.2-24\"\nversions = [\"3.1.1\"]\nreason = \"fine\"\n",
        )
        .expect("profile");
        let unknown = profile.unknown_statements(&catalogue);
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert!(unknown.iter().all(|u| u.contains("MQTT 5.0")), "{unknown:?}");
        for name in Profile::built_in_names() {
            let profile = Profile::resolve(Path::new(&name)).expect("built-in profile");
            assert!(profile.unknown_statements(&catalogue).is_empty(), "{name}");
        }
        assert!(Profile::resolve(Path::new("no-such-broker")).is_err());
    }
}
