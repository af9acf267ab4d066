//! The statement catalogue: every normative statement of 3.1.1 and 5.0, embedded from
//! `conformance/catalogue/*.toml`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::version::Version;

const CATALOGUE_V3_1_1: &str = include_str!("../catalogue/v3.1.1.toml");
const CATALOGUE_V5: &str = include_str!("../catalogue/v5.0.toml");

/// One normative statement of the standard.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Statement id as the standard prints it, e.g. `MQTT-3.3.1-5`.
    pub id: String,
    /// MUST, MUST NOT, SHOULD, SHOULD NOT or MAY.
    pub level: String,
    /// client, server or both.
    pub binds: String,
    /// Whether a test client can observe compliance over the wire.
    pub observable: bool,
    /// For statements binding the client (or both sides): whether a test server can
    /// observe a client's compliance on the wire or in what the library reports to its
    /// application (the client role, `crate::clients`).
    #[serde(default)]
    pub client_observable: bool,
    /// Section of the standard.
    pub section: String,
    /// Grouping tag.
    pub topic: String,
    /// One-line paraphrase.
    pub summary: String,
}

#[derive(Debug, Deserialize)]
struct CatalogueFile {
    statement: Vec<Statement>,
}

/// The statements of both versions, in the standard's order.
#[derive(Debug, Clone)]
pub struct Catalogue {
    by_version: BTreeMap<Version, Vec<Statement>>,
}

impl Catalogue {
    /// The embedded catalogue.
    pub fn embedded() -> Result<Self, String> {
        let mut by_version = BTreeMap::new();
        for (version, text) in [(Version::V3_1_1, CATALOGUE_V3_1_1), (Version::V5, CATALOGUE_V5)] {
            let file: CatalogueFile =
                toml::from_str(text).map_err(|e| format!("embedded catalogue for {version} is invalid: {e}"))?;
            by_version.insert(version, file.statement);
        }
        Ok(Self { by_version })
    }

    /// The statements of one version.
    pub fn statements(&self, version: Version) -> &[Statement] {
        self.by_version.get(&version).map(Vec::as_slice).unwrap_or_default()
    }

    /// One statement by id.
    pub fn get(&self, version: Version, id: &str) -> Option<&Statement> {
        self.statements(version).iter().find(|s| s.id == id)
    }

    /// Whether `id` is a statement of `version`.
    pub fn contains(&self, version: Version, id: &str) -> bool {
        self.get(version, id).is_some()
    }

    /// Section of a statement, if known.
    pub fn section_of(&self, version: Version, id: &str) -> Option<&str> {
        self.get(version, id).map(|s| s.section.as_str())
    }
}
