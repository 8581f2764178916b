//! Mimir's configuration file for one process on loopback.

/// Mimir's configuration file: everything on loopback and on local disk
/// under `dir`, rings kept in memory (one process needs no gossip), and
/// the waits that suit a cluster of many replicas cut to nothing.
pub(super) fn config(dir: &std::path::Path, http: u16, grpc: u16, gossip: u16) -> String {
    let path = |name: &str| format!("{:?}", dir.join(name).display().to_string());
    format!(
        "\
# Every component in this one process.
target: all
# Each request must name its tenant in X-Scope-OrgID (no default tenant).
multitenancy_enabled: true
# No anonymous usage reports to grafana.com.
usage_stats: {{enabled: false}}
activity_tracker: {{filepath: {activity}}}

server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc}
  log_level: warn

# Series: ingesters keep recent samples in a local TSDB; blocks would be
# shipped to a directory standing in for object storage.
blocks_storage:
  backend: filesystem
  filesystem: {{dir: {blocks}}}
  tsdb: {{dir: {tsdb}}}
  bucket_store: {{sync_dir: {sync}}}
compactor:
  data_dir: {compactor}
  sharding_ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}

# Each ring lives in this process' memory. Components reach each other at
# the address they register there, which would otherwise be that of the
# first private network interface, where nothing listens.
distributor:
  ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}
ingester:
  ring:
    kvstore: {{store: inmemory}}
    instance_addr: 127.0.0.1
    # One ingester holds every series.
    replication_factor: 1
    # Ready as soon as the ring has it (15 s by default).
    min_ready_duration: 0s
querier:
  ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}
store_gateway:
  sharding_ring:
    kvstore: {{store: inmemory}}
    instance_addr: 127.0.0.1
    replication_factor: 1
query_scheduler:
  ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}
# The address queriers send results back to the query-frontend at; by
# default that of a network interface, and queries then hang.
frontend:
  address: 127.0.0.1
# Nothing gossips with in-memory rings; were it started, it stays on loopback.
memberlist:
  bind_addr: [127.0.0.1]
  bind_port: {gossip}
  advertise_addr: 127.0.0.1
  advertise_port: {gossip}

ruler:
  rule_path: {ruler}
  # Groups without an interval of their own are evaluated every second.
  evaluation_interval: 1s
  # An upload is applied through the sync queues (10 s apart by default);
  # the periodic re-read of all groups from storage is a fallback.
  inbound_sync_queue_poll_interval: 1s
  outbound_sync_queue_poll_interval: 1s
  poll_interval: 5s
  ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}
ruler_storage:
  backend: filesystem
  filesystem: {{dir: {rules}}}

limits:
  # Rules are evaluated at the present, not a minute in the past (the
  # default, which waits for late samples).
  ruler_evaluation_delay_duration: 0s
  # No cap on groups per tenant or rules per group (70 and 20 by default).
  ruler_max_rule_groups_per_tenant: 0
  ruler_max_rules_per_rule_group: 0
",
        activity = path("activity.log"),
        blocks = path("data/blocks"),
        tsdb = path("data/tsdb"),
        sync = path("data/tsdb-sync"),
        compactor = path("data/compactor"),
        ruler = path("data/ruler"),
        rules = path("data/rules"),
    )
}
