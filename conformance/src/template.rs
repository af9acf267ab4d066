//! `{name}` variable substitution in scenario strings (`{prefix}`, captured values, profile
//! values such as `{refused_topic}`).

use std::collections::BTreeMap;

/// Variables visible to one scenario run.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    /// Set a variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    /// Forget a variable (a later capture binds it afresh).
    pub fn unset(&mut self, name: &str) {
        self.values.remove(name);
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Replace every `{name}` in `template`; `{{` and `}}` stand for literal braces.
    pub fn expand(&self, template: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(pos) = rest.find(['{', '}']) {
            let (before, after) = rest.split_at(pos);
            out.push_str(before);
            if let Some(tail) = after.strip_prefix("{{") {
                out.push('{');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("}}") {
                out.push('}');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('{') {
                let end = tail.find('}').ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
                let (name, tail) = tail.split_at(end);
                let value = self.get(name).ok_or_else(|| format!("unknown variable `{{{name}}}` in `{template}`"))?;
                out.push_str(value);
                rest = tail.get(1..).unwrap_or_default();
            } else {
                out.push('}');
                rest = after.get(1..).unwrap_or_default();
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_and_escapes() {
        let mut vars = Variables::default();
        vars.set("prefix", "mk1");
        assert_eq!(vars.expand("{prefix}/a/{{x}}").as_deref(), Ok("mk1/a/{x}"));
        assert!(vars.expand("{nope}").is_err());
        assert!(vars.expand("{prefix").is_err());
    }
}
