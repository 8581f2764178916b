//! NetworkPolicy enforcement inside the node (kube-router's firewall),
//! so that deploy/'s policies and the manager's are tested as they are.

use super::*;

/// How long kube-router may take to start and write its first rules.
const ENFORCING_WITHIN: Duration = Duration::from_secs(60);

impl Node {
    /// Enforces NetworkPolicies from now on: kube-router (tests/kube-router/,
    /// a test bed tool only) runs inside the node with its firewall alone
    /// (no routing, no service proxy: the bridge plugin and kube-proxy keep
    /// those), as admin, and this returns once it has written its first
    /// rules. Its chains and ipsets live in the node's network namespace.
    ///
    /// What it needs here:
    /// - Debian's `ipset` on the PATH, and iptables with the same backend
    ///   as kube-proxy's (both call `iptables`);
    /// - `net.bridge.bridge-nf-call-iptables=1` in the node's namespace, or
    ///   traffic between pods on the bridge never meets its rules;
    /// - the node's InternalIP (kubelet's --node-ip): it enforces for the
    ///   pods whose hostIP that is; no podCIDR (that is its router's);
    /// - the Service range, whose addresses it lets through unfiltered (they
    ///   are judged after kube-proxy's DNAT, at the endpoint).
    ///
    /// Policies are judged after DNAT, so pods' API server traffic counts
    /// at the endpoint's port, which on a real cluster is 443 or 6443 and
    /// here a free one. So that deploy/'s egress rule for the API server is
    /// tested as it is, pods reach it, from now on, at NODE_IP:6443
    /// ([`POD_API_PORT`]): a forward to the API server, and a DNAT of the
    /// `kubernetes` Service's address to it ahead of kube-proxy's.
    pub async fn enforce_network_policies(&mut self) -> Result<(), NodeError> {
        if let Some(why) = missing_enforcement() {
            return Err(NodeError::Unsupported(why));
        }
        let binary = tokio::task::spawn_blocking(|| {
            crate::go_build("kube-router").map_err(NodeError::Build)
        })
        .await
        .map_err(|e| NodeError::Start(e.to_string()))??;

        let for_pods = SocketAddr::V4(SocketAddrV4::new(NODE_IP, POD_API_PORT));
        let listener = self.netns.listen(for_pods)?;
        self.forwards.push(Forward::start(
            listener,
            Side::Inside(self.netns.clone(), self.api_server),
        )?);

        tokio::task::block_in_place(|| -> Result<(), NodeError> {
            self.run_inside(
                "sysctl",
                &["-q", "-w", "net.bridge.bridge-nf-call-iptables=1"],
            )?;
            self.redirect_api_service(for_pods)?;
            self.start_kube_router(&binary)?;
            self.until_enforcing()
        })
    }

    /// DNATs pods' traffic to the `kubernetes` Service to `for_pods`,
    /// ahead of kube-proxy's jump to its Services; so first the jump must
    /// be there: kube-proxy puts it first only when it is missing.
    fn redirect_api_service(&self, for_pods: SocketAddr) -> Result<(), NodeError> {
        let service = self.kubectl.run(&[
            "get",
            "service",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])?;
        self.until_kube_proxy_jump()?;
        self.run_inside(
            "iptables",
            &[
                "-t",
                "nat",
                "-I",
                "PREROUTING",
                "1",
                "-s",
                POD_CIDR,
                "-d",
                service.trim(),
                "-p",
                "tcp",
                "--dport",
                "443",
                "-m",
                "comment",
                "--comment",
                "pods reach the API server at the node's port 6443, as on a kubeadm node",
                "-j",
                "DNAT",
                "--to-destination",
                &for_pods.to_string(),
            ],
        )?;
        Ok(())
    }

    /// kube-router with its firewall alone (no routing, no service proxy).
    fn start_kube_router(&mut self, binary: &Path) -> Result<(), NodeError> {
        let log = std::fs::File::create(self.dir.path().join("logs/kube-router.log"))?;
        let child = self
            .command(binary)
            .args([
                format!("--kubeconfig={}", self.node_kubeconfig.display()),
                format!("--hostname-override={NODE_NAME}"),
                "--run-firewall=true".to_owned(),
                "--run-router=false".to_owned(),
                "--run-service-proxy=false".to_owned(),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--health-port=0".to_owned(),
                "--metrics-port=0".to_owned(),
                // One line per sync, with its duration.
                "--v=1".to_owned(),
            ])
            // It runs `ipset`, `iptables-save` and `iptables-restore`.
            .env("PATH", sbin_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.processes.push(Process {
            name: "kube-router",
            child,
        });
        Ok(())
    }

    /// Waits until kube-proxy's first sync has put its jump to KUBE-SERVICES
    /// into the nat table's PREROUTING.
    fn until_kube_proxy_jump(&self) -> Result<(), NodeError> {
        let started = Instant::now();
        loop {
            let jump = self.run_inside(
                "iptables",
                &[
                    "-t",
                    "nat",
                    "-C",
                    "PREROUTING",
                    "-m",
                    "comment",
                    "--comment",
                    "kubernetes service portals",
                    "-j",
                    "KUBE-SERVICES",
                ],
            );
            if jump.is_ok() {
                return Ok(());
            }
            if started.elapsed() > ENFORCING_WITHIN {
                return Err(NodeError::Start(format!(
                    "kube-proxy wrote no jump to its Services within {ENFORCING_WITHIN:?}:\n{}",
                    self.log_tail("kube-proxy", 30)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until kube-router's first full sync is in place: its last rule
    /// of KUBE-ROUTER-FORWARD, which accepts what passed the policies, is
    /// written by that sync.
    fn until_enforcing(&mut self) -> Result<(), NodeError> {
        let started = Instant::now();
        loop {
            if let Some(p) = self.processes.iter_mut().find(|p| p.name == "kube-router")
                && let Ok(Some(status)) = p.child.try_wait()
            {
                return Err(NodeError::Start(format!(
                    "kube-router exited ({status}):\n{}",
                    self.log_tail("kube-router", 30)
                )));
            }
            let rules = self
                .command(Path::new("iptables"))
                .args(["-S", "KUBE-ROUTER-FORWARD"])
                .output()?;
            if String::from_utf8_lossy(&rules.stdout).contains("0x20000/0x20000 -j ACCEPT") {
                return Ok(());
            }
            if started.elapsed() > ENFORCING_WITHIN {
                return Err(NodeError::Start(format!(
                    "kube-router wrote no rules within {ENFORCING_WITHIN:?}:\n{}",
                    self.log_tail("kube-router", 30)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
