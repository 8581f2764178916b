//! The node's processes (the control plane inside the node, containerd,
//! kube-controller-manager, kube-scheduler, kube-proxy, kubelet), the
//! configuration files they read, and the wait until the node is Ready.

use super::*;

/// How long the node may take to become Ready.
const READY_WITHIN: Duration = Duration::from_secs(180);

impl Node {
    /// The control plane inside the node, listening on the node's address
    /// (kube-proxy routes the kubernetes Service there). Returns the
    /// kubeconfig the node's processes use.
    pub(super) fn start_api_server(&mut self, controlplane: &Path) -> Result<PathBuf, NodeError> {
        let dir = self.dir.path().join("controlplane");
        let log = std::fs::File::create(self.dir.path().join("logs/controlplane.log"))?;
        let mut child = self
            .command(controlplane)
            .args(["serve", "--address", &NODE_IP.to_string(), "--dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        self.processes.push(Process {
            name: "controlplane",
            child,
        });
        let kubeconfig = match (read, line.strip_prefix("READY ")) {
            (Ok(_), Some(path)) => PathBuf::from(path.trim()),
            _ => {
                return Err(NodeError::Start(format!(
                    "the API server did not start:\n{}",
                    self.log_tail("controlplane", 30)
                )));
            }
        };
        let config = std::fs::read_to_string(&kubeconfig)?;
        let server = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .and_then(|s| s.trim().strip_prefix("https://"))
            .and_then(|s| s.parse::<SocketAddr>().ok())
            .ok_or_else(|| NodeError::Start(format!("no server in {}", kubeconfig.display())))?;
        self.api_server = server;
        Ok(kubeconfig)
    }

    /// A kubeconfig for the host side: the node's, pointed at a forward on
    /// 127.0.0.1 (the serving certificate names 127.0.0.1).
    pub(super) async fn host_kubectl(
        &mut self,
        controlplane: &Path,
        node_kubeconfig: &Path,
    ) -> Result<Kubectl, NodeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let forward = Forward::start(listener, Side::Inside(self.netns.clone(), self.api_server))?;
        let config = std::fs::read_to_string(node_kubeconfig)?.replace(
            &format!("https://{}", self.api_server),
            &format!("https://{}", forward.addr()),
        );
        self.forwards.push(forward);
        let path = self.dir.path().join("host.kubeconfig");
        std::fs::write(&path, config)?;
        Ok(Kubectl::new(
            controlplane::kubectl_program(|| Ok(controlplane.to_owned()))?,
            path,
        ))
    }

    pub(super) fn start_containerd(&mut self) -> Result<(), NodeError> {
        let d = self.dir.path().join("containerd");
        let cni = self.dir.path().join("cni");
        std::fs::create_dir_all(cni.join("net.d"))?;
        std::fs::write(cni.join("net.d/10-bridge.conflist"), cni_config(&cni))?;
        std::fs::create_dir_all(&d)?;
        let config = d.join("config.toml");
        std::fs::write(&config, containerd_config(&d, &cni))?;
        self.spawn(
            "containerd",
            &which("containerd").unwrap_or_else(|| "containerd".into()),
            &["--config".into(), config.display().to_string()],
        )?;
        let socket = self.containerd_socket();
        let started = Instant::now();
        loop {
            let ok = socket.exists()
                && self
                    .command(Path::new("ctr"))
                    .arg("--address")
                    .arg(&socket)
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(NodeError::Start(format!(
                    "containerd did not start:\n{}",
                    self.log_tail("containerd", 30)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// kube-controller-manager, kube-scheduler, kube-proxy and kubelet, all
    /// as admin (system:masters): the node's own identities are not what the
    /// tests are about.
    pub(super) fn start_components(&mut self, kubeconfig: &Path) -> Result<(), NodeError> {
        let node = self.binaries.join("node");
        let d = self.dir.path().to_owned();
        let kc = kubeconfig.display().to_string();
        let pki = d.join("controlplane/pki");
        let arg = |s: &str| s.to_owned();

        self.spawn(
            "kube-controller-manager",
            &node,
            &[
                arg("kube-controller-manager"),
                format!("--kubeconfig={kc}"),
                arg("--leader-elect=false"),
                arg("--bind-address=127.0.0.1"),
                // kube-root-ca.crt in every namespace: pods' token volumes need it.
                format!("--root-ca-file={}", pki.join("ca.crt").display()),
                format!(
                    "--service-account-private-key-file={}",
                    pki.join("sa.key").display()
                ),
                arg("--allocate-node-cidrs=false"),
            ],
        )?;
        self.spawn(
            "kube-scheduler",
            &node,
            &[
                arg("kube-scheduler"),
                format!("--kubeconfig={kc}"),
                arg("--leader-elect=false"),
                arg("--bind-address=127.0.0.1"),
            ],
        )?;

        let proxy_config = d.join("kube-proxy.yaml");
        std::fs::write(&proxy_config, kube_proxy_config(&kc))?;
        self.spawn(
            "kube-proxy",
            &node,
            &[
                arg("kube-proxy"),
                format!("--config={}", proxy_config.display()),
            ],
        )?;

        self.start_kubelet(&node, &kc, &pki)
    }

    /// kubelet, with its config, root and certificates in the node's dir.
    fn start_kubelet(&mut self, node: &Path, kc: &str, pki: &Path) -> Result<(), NodeError> {
        let d = self.dir.path().to_owned();
        let arg = |s: &str| s.to_owned();
        let kubelet_dir = d.join("kubelet");
        std::fs::create_dir_all(&kubelet_dir)?;
        let kubelet_config = d.join("kubelet.yaml");
        std::fs::write(
            &kubelet_config,
            kubelet_config_yaml(
                &d,
                &self.containerd_socket(),
                &pki.join("ca.crt"),
                std::process::id(),
            ),
        )?;
        self.spawn(
            "kubelet",
            node,
            &[
                arg("kubelet"),
                format!("--config={}", kubelet_config.display()),
                format!("--kubeconfig={kc}"),
                format!("--root-dir={}", kubelet_dir.display()),
                format!("--cert-dir={}", kubelet_dir.join("pki").display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={NODE_IP}"),
            ],
        )?;
        Ok(())
    }

    pub(super) fn until_ready(&mut self) -> Result<(), NodeError> {
        let started = Instant::now();
        loop {
            for p in &mut self.processes {
                if let Ok(Some(status)) = p.child.try_wait() {
                    let name = p.name;
                    return Err(NodeError::Start(format!(
                        "{name} exited ({status}):\n{}",
                        self.log_tail(name, 30)
                    )));
                }
            }
            let ready = self
                .kubectl
                .condition_status(None, &format!("node/{NODE_NAME}"), "Ready");
            if ready.is_ok_and(|s| s == "True") {
                return Ok(());
            }
            if started.elapsed() > READY_WITHIN {
                return Err(NodeError::Start(format!(
                    "the node was not Ready within {READY_WITHIN:?}; kubelet log tail:\n{}",
                    self.log_tail("kubelet", 40)
                )));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn cni_config(dir: &Path) -> String {
    format!(
        r#"{{
  "cniVersion": "1.0.0",
  "name": "alert-poller-node",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{"subnet": "{POD_CIDR}"}}]],
        "routes": [{{"dst": "0.0.0.0/0"}}],
        "dataDir": "{}"
      }}
    }}
  ]
}}
"#,
        dir.join("ipam").display()
    )
}

fn containerd_config(dir: &Path, cni: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{d}/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  # Without CAP_SYS_RESOURCE (a sandboxed test machine's root may lack it)
  # no process may lower its OOM score; clamp instead of failing the pod.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{}/net.d"
"#,
        cni.display()
    )
}

/// kube-proxy in iptables mode, changing nothing outside the node's network
/// namespace: no global conntrack table size, no route_localnet.
fn kube_proxy_config(kubeconfig: &str) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {kubeconfig}
hostnameOverride: {NODE_NAME}
clusterCIDR: {POD_CIDR}
bindAddress: 127.0.0.1
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  masqueradeAll: true
"#
    )
}

fn kubelet_config_yaml(dir: &Path, containerd: &Path, ca: &Path, test_pid: u32) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://{containerd}
# This host has cgroup v1 (hybrid); kubelet refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: {cgroup_root}
failSwapOn: false
protectKernelDefaults: false
podLogsDir: {logs}
address: {NODE_IP}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
clusterDomain: cluster.local
# No cluster DNS here: pods get no resolver rather than the host's.
resolvConf: ""
# The test machine's disk may be nearly full; only memory may evict.
evictionHard:
  memory.available: 100Mi
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
"#,
        containerd = containerd.display(),
        cgroup_root = cgroup_root(test_pid),
        logs = dir.join("pod-logs").display(),
        ca = ca.display(),
    )
}
