//! `--only` / `--skip`: every selector must name something, and a typo gets a suggestion.

use std::collections::BTreeSet;

use crate::catalogue::Catalogue;
use crate::scenario::Scenario;
use crate::version::Version;

/// Why a selection is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionError(pub String);

/// Scenarios selected by `--only`, `--skip` and the versions. Every selector must match at
/// least one scenario, and the selection must not be empty.
pub fn select(
    scenarios: &[Scenario],
    only: &[String],
    skip: &[String],
    versions: &[Version],
    catalogue: &Catalogue,
) -> Result<Vec<Scenario>, SelectionError> {
    for selector in only.iter().chain(skip) {
        if !scenarios.iter().any(|s| s.is_selected_by(selector, catalogue)) {
            let hint = nearest(selector, &names(scenarios, catalogue))
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            return Err(SelectionError(format!(
                "no scenario matches `{selector}`{hint} (selectors are scenario ids, id prefixes ending in `.`, tags, \
                 statement ids and sections such as `3.3`; `--list` shows them)"
            )));
        }
    }
    let selected: Vec<Scenario> = scenarios
        .iter()
        .filter(|s| s.versions.iter().any(|v| versions.contains(v)))
        .filter(|s| only.is_empty() || only.iter().any(|sel| s.is_selected_by(sel, catalogue)))
        .filter(|s| !skip.iter().any(|sel| s.is_selected_by(sel, catalogue)))
        .cloned()
        .collect();
    if selected.is_empty() {
        let versions: Vec<&str> = versions.iter().map(|v| v.label()).collect();
        return Err(SelectionError(format!(
            "the selection leaves no scenario to run under MQTT {} (check --only, --skip and --protocol)",
            versions.join(" and ")
        )));
    }
    Ok(selected)
}

/// Everything a selector can name.
fn names(scenarios: &[Scenario], catalogue: &Catalogue) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for scenario in scenarios {
        names.insert(scenario.id.clone());
        if let Some((group, _)) = scenario.id.split_once('.') {
            names.insert(format!("{group}."));
        }
        names.extend(scenario.tags.iter().cloned());
        for (version, ids) in &scenario.statements {
            for id in ids {
                names.insert(id.clone());
                if let Some(section) = catalogue.section_of(*version, id) {
                    names.insert(section.to_owned());
                }
            }
        }
    }
    names
}

/// The closest name, if it is close enough to be a likely typo.
fn nearest(selector: &str, names: &BTreeSet<String>) -> Option<String> {
    let wanted = selector.to_ascii_lowercase();
    names
        .iter()
        .map(|name| (edit_distance(&wanted, &name.to_ascii_lowercase()), name))
        .filter(|(distance, name)| *distance <= (name.chars().count() / 3).max(2))
        .min_by_key(|(distance, name)| (*distance, name.len()))
        .map(|(_, name)| name.clone())
}

/// Levenshtein distance, counting a swap of two neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        table[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        table[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[at(i - 1, j)] + 1).min(table[at(i, j - 1)] + 1).min(table[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[at(i - 2, j - 2)] + 1);
            }
            table[at(i, j)] = best;
        }
    }
    table[at(a.len(), b.len())]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_typo_gets_the_nearest_name() {
        let names: BTreeSet<String> = ["retain", "retain.as-published", "qos", "wildcard"].map(String::from).into();
        assert_eq!(nearest("retian", &names).as_deref(), Some("retain"));
        assert_eq!(nearest("wildcrad", &names).as_deref(), Some("wildcard"));
        assert_eq!(nearest("zzzzzzzz", &names), None);
    }

    #[test]
    fn selectors_that_match_nothing_are_refused() {
        let catalogue = Catalogue::embedded().expect("catalogue");
        let scenarios = crate::scenario::built_in().expect("scenarios");
        let error = select(&scenarios, &["retian".into()], &[], &Version::ALL, &catalogue).expect_err("typo");
        assert!(error.0.contains("did you mean `retain`?"), "{}", error.0);
        let error = select(&scenarios, &[], &["qos".into(), "nosuchtag".into()], &Version::ALL, &catalogue)
            .expect_err("skip typo");
        assert!(error.0.contains("nosuchtag"), "{}", error.0);
        assert!(select(&scenarios, &["retain".into()], &[], &Version::ALL, &catalogue).is_ok());
        let everything: Vec<String> = scenarios.iter().map(|s| s.id.clone()).collect();
        let error = select(&scenarios, &[], &everything, &Version::ALL, &catalogue).expect_err("empty");
        assert!(error.0.contains("leaves no scenario"), "{}", error.0);
    }
}
