//! Mimir's configuration file for one process on loopback.

/// The file, with `${name}` where [`config`] puts a port or a path.
const TEMPLATE: &str = include_str!("config.yaml");

/// Mimir's configuration file: everything on loopback and on local disk
/// under `dir`, rings kept in memory (one process needs no gossip), and
/// the waits that suit a cluster of many replicas cut to nothing
/// (config.yaml says why each setting is there).
pub(super) fn config(dir: &std::path::Path, http: u16, grpc: u16, gossip: u16) -> String {
    let path = |name: &str| format!("{:?}", dir.join(name).display().to_string());
    let values = [
        ("http", http.to_string()),
        ("grpc", grpc.to_string()),
        ("gossip", gossip.to_string()),
        ("activity", path("activity.log")),
        ("blocks", path("data/blocks")),
        ("tsdb", path("data/tsdb")),
        ("sync", path("data/tsdb-sync")),
        ("compactor", path("data/compactor")),
        ("ruler", path("data/ruler")),
        ("rules", path("data/rules")),
    ];
    values
        .iter()
        .fold(TEMPLATE.to_owned(), |text, (name, value)| {
            text.replace(&format!("${{{name}}}"), value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every placeholder is filled, and what is left is YAML with the ports
    /// and paths where Mimir reads them.
    #[test]
    fn every_placeholder_is_filled() {
        let text = config(std::path::Path::new("/tmp/m i"), 9009, 9095, 7946);
        assert!(!text.contains("${"), "{text}");
        let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
        assert_eq!(yaml["server"]["http_listen_port"], 9009);
        assert_eq!(yaml["server"]["grpc_listen_port"], 9095);
        assert_eq!(yaml["memberlist"]["advertise_port"], 7946);
        assert_eq!(yaml["ruler"]["rule_path"], "/tmp/m i/data/ruler");
    }
}
