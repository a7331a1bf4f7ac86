//! Cluster names, as Insights gives them and as directories take them.

/// A cluster name becomes a directory under `--out`; refuse anything that
/// could be read as a path rather than a name.
pub fn check_dir_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.len() > 200
        || name
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    if bad {
        return Err(format!(
            "cluster name {name:?} cannot be a directory under --out: use letters, digits, '-', '_' and '.', not starting with '.'"
        ));
    }
    Ok(())
}
