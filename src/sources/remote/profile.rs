//! The AWS shared credentials and config files (`~/.aws/credentials`, `~/.aws/config`, or
//! `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`): static keys and the region of a named
//! profile (`AWS_PROFILE`, default `default`). `object_store` reads the environment and
//! instance metadata itself but not these files.

use std::collections::HashMap;
use std::path::PathBuf;

/// Static credentials of a profile. Never logged: `Debug` is not derived.
pub(super) struct Credentials {
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: String,
    /// `aws_session_token`.
    pub session_token: Option<String>,
}

/// What the files say of one profile.
#[derive(Default)]
pub(super) struct Profile {
    /// Static keys, when both are present.
    pub credentials: Option<Credentials>,
    /// `region`.
    pub region: Option<String>,
}

/// Reads profile `name` (or `AWS_PROFILE`, or `default`) from the shared files; missing files
/// or keys give an empty profile.
pub(super) fn aws_profile(name: Option<&str>) -> Profile {
    let name = name
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_PROFILE").ok())
        .unwrap_or_else(|| "default".to_owned());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let read = |path: Option<PathBuf>| {
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| parse_ini(&text))
            .unwrap_or_default()
    };
    let credentials = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
    let config = read(file("AWS_CONFIG_FILE", "config"));
    let config_section = if name == "default" {
        name.clone()
    } else {
        format!("profile {name}")
    };
    let keys = credentials
        .get(&name)
        .or_else(|| config.get(&config_section));
    Profile {
        credentials: keys.and_then(|keys| {
            Some(Credentials {
                access_key_id: keys.get("aws_access_key_id")?.clone(),
                secret_access_key: keys.get("aws_secret_access_key")?.clone(),
                session_token: keys.get("aws_session_token").cloned(),
            })
        }),
        region: config
            .get(&config_section)
            .and_then(|keys| keys.get("region").cloned()),
    }
}

type Sections = HashMap<String, HashMap<String, String>>;

/// A minimal INI reader: `[section]` headers, `key = value` lines, `#`/`;` comments.
fn parse_ini(text: &str) -> Sections {
    let mut sections = Sections::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_owned();
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_and_keys() {
        let text = "[default]\naws_access_key_id = A\n# c\naws_secret_access_key=B\n\n[profile x]\nregion = eu-west-1\n";
        let ini = parse_ini(text);
        assert_eq!(ini["default"]["aws_access_key_id"], "A");
        assert_eq!(ini["default"]["aws_secret_access_key"], "B");
        assert_eq!(ini["profile x"]["region"], "eu-west-1");
    }
}
