package deploycheck

import (
	"net"
	"path"
	"slices"
	"strconv"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// mountAt returns the container's mount at mountPath and its pod volume
// (nil for a StatefulSet's claim template).
func mountAt(spec *corev1.PodSpec, c corev1.Container, mountPath string) (*corev1.VolumeMount, *corev1.Volume) {
	for i := range c.VolumeMounts {
		if path.Clean(c.VolumeMounts[i].MountPath) == path.Clean(mountPath) {
			return &c.VolumeMounts[i], podVolume(spec, c.VolumeMounts[i].Name)
		}
	}
	return nil, nil
}

// fieldRefVar reports whether value is exactly $(NAME) with the env var
// NAME set from the downward API field fieldPath.
func fieldRefVar(c corev1.Container, value, fieldPath string) bool {
	m := varRef.FindStringSubmatch(value)
	if m == nil || m[0] != value {
		return false
	}
	e := envVar(c, m[1])
	return e != nil && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == fieldPath
}

// hostPort splits a host:port flag value; the host may be $(VAR).
func hostPort(t *testing.T, what, value string) (string, int32) {
	t.Helper()
	h, p, err := net.SplitHostPort(value)
	n, perr := strconv.ParseInt(p, 10, 32)
	if err != nil || perr != nil {
		t.Fatalf("%s: %q is not host:port", what, value)
	}
	return h, int32(n)
}

// checkProbe: an HTTP GET of path on the port the process listens on.
func checkProbe(t *testing.T, what string, c corev1.Container, p *corev1.Probe, wantPath string, port int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: want an httpGet probe of %s", what, wantPath)
		return
	}
	got := p.HTTPGet.Port.IntVal
	if name := p.HTTPGet.Port.StrVal; name != "" {
		got = containerPort(t, c, name)
	}
	if p.HTTPGet.Path != wantPath || got != port {
		t.Errorf("%s: probes %s on port %d, want %s on %d (the --listen port)", what, p.HTTPGet.Path, got, wantPath, port)
	}
}

func TestAgentDaemonSet(t *testing.T) {
	d := loadManifests(t).daemonSets[0]
	spec := &d.Spec.Template.Spec
	c := spec.Containers[0]
	ca, err := parseContainerArgs(c.Args)
	if err != nil || !slices.Equal(ca.command, []string{"agent"}) {
		t.Fatalf("DaemonSet %s runs %q (%v), want procfleet agent", d.Name, c.Args, err)
	}
	f := ca.flags
	checkAgentHostView(t, spec, c, f)
	checkAgentPrivileges(t, c)

	// The spool survives the pod: a hostPath, writable.
	m, v := mountAt(spec, c, f["spool-dir"])
	if f["spool-dir"] == "" || m == nil || v == nil || v.HostPath == nil || m.ReadOnly {
		t.Errorf("--spool-dir=%q: want a writable hostPath mount there (an emptyDir dies with the pod)", f["spool-dir"])
	} else if v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
		t.Error("spool hostPath: want type DirectoryOrCreate")
	}

	if got := c.Resources.Limits.Memory(); got.Cmp(resource.MustParse("256Mi")) != 0 {
		t.Errorf("memory limit %s, want 256Mi", got)
	}
	if got := c.Resources.Requests.Memory(); got.Cmp(resource.MustParse("128Mi")) > 0 {
		t.Errorf("memory request %s: keep it small, an agent has about 30 MB resident", got)
	}
	_, port := hostPort(t, "--listen", f["listen"])
	checkProbe(t, "livenessProbe", c, c.LivenessProbe, "/healthz", port)
	checkProbe(t, "startupProbe", c, c.StartupProbe, "/healthz", port)
	checkProbe(t, "readinessProbe", c, c.ReadinessProbe, "/readyz", port)
	_, gport := hostPort(t, "--gossip-listen", f["gossip-listen"])
	if _, aport := hostPort(t, "--gossip-advertise", f["gossip-advertise"]); aport != gport {
		t.Errorf("gossip listens on %d but advertises %d", gport, aport)
	}
	everywhere := false
	for _, tol := range spec.Tolerations {
		everywhere = everywhere || (tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == "")
	}
	if !everywhere {
		t.Error("want a toleration {operator: Exists}: an agent on every node, tainted ones too")
	}
}

// checkAgentHostView: the agent sees the node's processes, network
// namespace, /proc and /sys (read-only), and its node name.
func checkAgentHostView(t *testing.T, spec *corev1.PodSpec, c corev1.Container, f map[string]string) {
	t.Helper()
	if !spec.HostPID {
		t.Error("hostPID must be true: the host's /proc lists only the pod's processes otherwise")
	}
	// /proc/net shows the reader's network namespace: the node's only
	// from the host network.
	if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Error("want hostNetwork: true (node_network_* of the node, not of the pod) with dnsPolicy: ClusterFirstWithHostNet (cluster DNS names of upstreams)")
	}
	for flag, host := range map[string]string{"procfs-root": "/proc", "sysfs-root": "/sys"} {
		m, v := mountAt(spec, c, f[flag])
		if m == nil || v == nil || v.HostPath == nil || v.HostPath.Path != host {
			t.Errorf("--%s=%s: want a mount there of the hostPath %s", flag, f[flag], host)
			continue
		}
		if !m.ReadOnly {
			t.Errorf("--%s=%s: the host's %s must be mounted read-only", flag, f[flag], host)
		}
	}
	if f["procfs-root"] == "/proc" || f["procfs-root"] == "" {
		t.Error("--procfs-root must point at the host's /proc mount, not the container's own /proc")
	}
	for _, flag := range []string{"node", "hostname"} {
		if !fieldRefVar(c, f[flag], "spec.nodeName") {
			t.Errorf("--%s=%s: want $(VAR) with VAR from the downward API spec.nodeName", flag, f[flag])
		}
	}
	for _, flag := range []string{"gossip-advertise", "gossip-listen", "listen"} {
		if h, _ := hostPort(t, "--"+flag, f[flag]); !fieldRefVar(c, h, "status.podIP") {
			t.Errorf("--%s=%s: want the pod IP ($(VAR) from status.podIP), which is the node's IP on the host network", flag, f[flag])
		}
	}
}

// checkAgentPrivileges: uid 0 with exactly CAP_SYS_PTRACE and
// CAP_DAC_READ_SEARCH, which /proc/PID/io of other users' processes needs
// (the mode 0400 file and the kernel's ptrace-read check); capabilities
// reach only a uid-0 process, since Kubernetes sets no ambient ones.
func checkAgentPrivileges(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("agent: no securityContext.capabilities")
	}
	add := slices.Clone(sc.Capabilities.Add)
	slices.Sort(add)
	if want := []corev1.Capability{"DAC_READ_SEARCH", "SYS_PTRACE"}; !slices.Equal(add, want) {
		t.Errorf("agent capabilities add %v, want exactly %v", sc.Capabilities.Add, want)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) {
		t.Error("agent: want runAsUser: 0 (the image's user is 65534, and a non-root process gets no capabilities)")
	}
}

func TestRelayStatefulSet(t *testing.T) {
	m := loadManifests(t)
	s := m.statefulSets[0]
	spec := &s.Spec.Template.Spec
	c := spec.Containers[0]
	ca, err := parseContainerArgs(c.Args)
	if err != nil || !slices.Equal(ca.command, []string{"relay"}) {
		t.Fatalf("StatefulSet %s runs %q (%v), want procfleet relay", s.Name, c.Args, err)
	}
	f := ca.flags
	mnt, vol := mountAt(spec, c, f["data-dir"])
	claimed := false
	for _, vct := range s.Spec.VolumeClaimTemplates {
		claimed = claimed || (mnt != nil && vct.Name == mnt.Name && !vct.Spec.Resources.Requests.Storage().IsZero())
	}
	if !claimed || vol != nil || mnt.ReadOnly {
		t.Errorf("--data-dir=%q: want a writable mount there of a volumeClaimTemplate with a storage request", f["data-dir"])
	}
	_, port := hostPort(t, "--listen", f["listen"])
	checkProbe(t, "readinessProbe", c, c.ReadinessProbe, "/readyz", port)
	checkProbe(t, "livenessProbe", c, c.LivenessProbe, "/healthz", port)
	if !fieldRefVar(c, f["node"], "metadata.name") {
		t.Errorf("--node=%s: want the pod's stable name ($(VAR) from metadata.name)", f["node"])
	}
	if h, _ := hostPort(t, "--gossip-advertise", f["gossip-advertise"]); !fieldRefVar(c, h, "status.podIP") {
		t.Errorf("--gossip-advertise=%s: want the pod IP ($(VAR) from status.podIP)", f["gossip-advertise"])
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.FSGroup == nil {
		t.Error("relay: want runAsNonRoot: true and an fsGroup that can write the volume")
	}
	if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
		t.Errorf("relay: adds capabilities %v; it needs none", sc.Capabilities.Add)
	}
	svc := m.services[s.Spec.ServiceName]
	if svc == nil {
		t.Fatalf("serviceName %q: no such Service", s.Spec.ServiceName)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Error("the StatefulSet's Service must be headless (clusterIP: None) for per-pod names")
	}
	for k, v := range svc.Spec.Selector {
		if s.Spec.Template.Labels[k] != v {
			t.Errorf("Service %s selects %s=%s, not on the relay pods", svc.Name, k, v)
		}
	}
	served := false
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort.IntVal
		if p.TargetPort.StrVal != "" {
			target = containerPort(t, c, p.TargetPort.StrVal)
		}
		served = served || (target == port && p.Port == port)
	}
	if !served {
		t.Errorf("Service %s does not serve the import port %d", svc.Name, port)
	}
}

func TestBootstrapJob(t *testing.T) {
	j := loadManifests(t).jobs[0]
	spec := &j.Spec.Template.Spec
	c := spec.Containers[0]
	ca, err := parseContainerArgs(c.Args)
	if err != nil || !slices.Equal(ca.command, []string{"cluster", "bootstrap"}) {
		t.Fatalf("Job %s runs %q (%v), want procfleet cluster bootstrap", j.Name, c.Args, err)
	}
	if _, ok := ca.flags["force"]; ok {
		t.Error("the Job must not pass --force: a second run would replace the live config")
	}
	dir, file := path.Split(ca.flags["config"])
	m, v := mountAt(spec, c, dir)
	ok := m != nil && v != nil && v.ConfigMap != nil && v.ConfigMap.Name == sharedConfig
	if ok {
		ok = false
		for _, it := range v.ConfigMap.Items {
			ok = ok || (it.Key == clusterDocKey && it.Path == file)
		}
	}
	if !ok {
		t.Errorf("--config=%s: want ConfigMap %s key %s mounted there", ca.flags["config"], sharedConfig, clusterDocKey)
	}
	if spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Error("want restartPolicy: Never (podFailurePolicy needs it)")
	}
	if j.Spec.TTLSecondsAfterFinished != nil {
		t.Error("no ttlSecondsAfterFinished: a deleted Job comes back with the next apply and meets the existing config")
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 1 {
		t.Error("want a backoffLimit of at least 1: etcd may come up after the Job")
	}
	// Exit 2 is a usage error (an invalid cluster.yaml): no retry helps.
	failsOnUsage := false
	if p := j.Spec.PodFailurePolicy; p != nil {
		for _, r := range p.Rules {
			e := r.OnExitCodes
			failsOnUsage = failsOnUsage || (r.Action == batchv1.PodFailurePolicyActionFailJob && e != nil &&
				e.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && slices.Contains(e.Values, 2) &&
				(e.ContainerName == nil || *e.ContainerName == c.Name))
		}
	}
	if !failsOnUsage {
		t.Error("want a podFailurePolicy rule that fails the Job on exit code 2")
	}
}
