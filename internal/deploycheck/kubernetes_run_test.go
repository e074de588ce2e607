package deploycheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/procfleet/procfleet/internal/etcdtest"
)

// sandbox runs a manifest's container as a local process, as the kubelet
// would set it up: env vars resolved from the ConfigMaps and the downward
// API, mounts mapped to local directories (the host's /proc and /sys to the
// fixture trees), and the addresses it listens on moved to free loopback
// ports. The ConfigMap's etcd endpoints become the test's etcd.
type sandbox struct {
	t      *testing.T
	m      *manifests
	etcd   string
	fields map[string]string // downward API field path → value
	mounts map[string]string // mountPath → local directory
	ports  map[string]string // port in the manifest → free loopback port
}

func newSandbox(t *testing.T, m *manifests, etcd string, fields map[string]string) *sandbox {
	return &sandbox{t: t, m: m, etcd: etcd, fields: fields, mounts: map[string]string{}, ports: map[string]string{}}
}

// addrFlags are the flags whose host:port the sandbox moves.
var addrFlags = map[string]bool{"listen": true, "gossip-listen": true, "gossip-advertise": true}

// container returns the env (KEY=value) and args to run c of spec with.
func (s *sandbox) container(spec *corev1.PodSpec, c corev1.Container) (env, args []string) {
	s.t.Helper()
	vals := map[string]string{}
	for _, e := range c.Env {
		vals[e.Name] = s.envValue(e)
		env = append(env, e.Name+"="+vals[e.Name])
	}
	for _, vm := range c.VolumeMounts {
		s.mounts[path.Clean(vm.MountPath)] = s.local(spec, vm)
	}
	for _, a := range c.Args {
		a = varRef.ReplaceAllStringFunc(a, func(ref string) string { return vals[varRef.FindStringSubmatch(ref)[1]] })
		name, value, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(name, "--") {
			args = append(args, a)
			continue
		}
		if addrFlags[strings.TrimPrefix(name, "--")] {
			value = s.addr(value)
		}
		local := s.localPath(value)
		if path.IsAbs(value) && local == value {
			s.t.Fatalf("%s: not under a mount, so in the read-only root filesystem", a)
		}
		args = append(args, name+"="+local)
	}
	return env, args
}

func (s *sandbox) envValue(e corev1.EnvVar) string {
	s.t.Helper()
	switch {
	case e.ValueFrom == nil:
		return e.Value
	case e.ValueFrom.FieldRef != nil:
		v, ok := s.fields[e.ValueFrom.FieldRef.FieldPath]
		if !ok {
			s.t.Fatalf("env %s: the sandbox has no value for field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
		}
		return v
	case e.ValueFrom.ConfigMapKeyRef != nil:
		ref := e.ValueFrom.ConfigMapKeyRef
		if ref.Name == sharedConfig && ref.Key == etcdKey {
			return s.etcd
		}
		return s.m.configMaps[ref.Name].Data[ref.Key]
	}
	s.t.Fatalf("env %s: a source the sandbox does not know", e.Name)
	return ""
}

// local returns the directory that stands for the mount vm.
func (s *sandbox) local(spec *corev1.PodSpec, vm corev1.VolumeMount) string {
	s.t.Helper()
	v := podVolume(spec, vm.Name)
	switch {
	case v != nil && v.HostPath != nil && v.HostPath.Path == "/proc":
		return filepath.Join(repoRoot(s.t), "testdata", "fixtures", "proc")
	case v != nil && v.HostPath != nil && v.HostPath.Path == "/sys":
		return filepath.Join(repoRoot(s.t), "testdata", "fixtures", "sys")
	case v != nil && v.ConfigMap != nil:
		dir := s.t.TempDir()
		data := s.m.configMaps[v.ConfigMap.Name].Data
		items := v.ConfigMap.Items
		if len(items) == 0 {
			for k := range data {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			if err := os.WriteFile(filepath.Join(dir, it.Path), []byte(data[it.Key]), 0o644); err != nil {
				s.t.Fatal(err)
			}
		}
		return dir
	}
	// A hostPath of a directory to write in, an emptyDir or a claim:
	// an empty directory.
	return s.t.TempDir()
}

// localPath maps a path under a mount to the local directory.
func (s *sandbox) localPath(p string) string {
	for mp, dir := range s.mounts {
		if p == mp || strings.HasPrefix(p, mp+"/") {
			return dir + strings.TrimPrefix(p, mp)
		}
	}
	return p
}

// addr moves host:port to 127.0.0.1 and a free port, the same free port
// for the same port in the manifest.
func (s *sandbox) addr(hp string) string {
	s.t.Helper()
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		s.t.Fatalf("address %q: %v", hp, err)
	}
	if _, ok := s.ports[port]; !ok {
		s.ports[port] = freeAddr(s.t)
	}
	return s.ports[port]
}

// mapped returns the local address of the manifest's port.
func (s *sandbox) mapped(port int32) string {
	s.t.Helper()
	a, ok := s.ports[fmt.Sprint(port)]
	if !ok {
		s.t.Fatalf("port %d: the container listens on no such port", port)
	}
	return a
}

// TestBootstrapJobRuns runs the Job's container against etcd: it writes
// the config once, and a second run changes nothing and succeeds
// (--if-absent); an invalid config exits 2 (fails the Job at once).
func TestBootstrapJobRuns(t *testing.T) {
	m := loadManifests(t)
	e := etcdtest.StartEtcd(t)
	job := m.jobs[0]
	sb := newSandbox(t, m, strings.Join(e.Endpoints, ","), nil)
	env, args := sb.container(&job.Spec.Template.Spec, job.Spec.Template.Spec.Containers[0])

	out, errOut, code := runProcfleetEnv(t, env, args...)
	if code != 0 || !strings.Contains(out, "bootstrapped") {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	cluster := m.configMaps[sharedConfig].Data[clusterKey]
	key := "/procfleet/" + cluster + "/config"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get, err := e.Client(t).Get(ctx, key)
	if err != nil || len(get.Kvs) != 1 || string(get.Kvs[0].Value) != m.configMaps[sharedConfig].Data[clusterDocKey] {
		t.Fatalf("%s after the bootstrap: %v %v; want cluster.yaml of the ConfigMap", key, get, err)
	}
	rev := get.Kvs[0].ModRevision

	out, errOut, code = runProcfleetEnv(t, env, args...)
	if code != 0 || !strings.Contains(out, "already has a config; left unchanged") {
		t.Errorf("second run: exit %d, want 0 with \"already has a config; left unchanged\"\n%s%s", code, out, errOut)
	}
	if get, err = e.Client(t).Get(ctx, key); err != nil || get.Kvs[0].ModRevision != rev {
		t.Errorf("the second run changed %s: %v %v", key, get, err)
	}

	// The Job's podFailurePolicy fails at once on exit 2: check that an
	// invalid config gives it.
	cfg := sb.localPath(flagValue(job.Spec.Template.Spec.Containers[0].Args, "--config"))
	if err := os.WriteFile(cfg, []byte("upstreams: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code = runProcfleetEnv(t, env, args...); code != 2 {
		t.Errorf("invalid cluster.yaml: exit %d, want 2\n%s%s", code, out, errOut)
	}
}

// TestMembersRun runs the DaemonSet's agent and the StatefulSet's relay
// with their own arguments in a cluster bootstrapped by the Job: both
// register in etcd, answer their probes and write where their volumes are.
func TestMembersRun(t *testing.T) {
	m := loadManifests(t)
	e := etcdtest.StartEtcd(t)
	etcd := strings.Join(e.Endpoints, ",")
	job := m.jobs[0]
	env, args := newSandbox(t, m, etcd, nil).container(&job.Spec.Template.Spec, job.Spec.Template.Spec.Containers[0])
	if out, errOut, code := runProcfleetEnv(t, env, args...); code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s%s", code, out, errOut)
	}
	relayName := m.statefulSets[0].Name + "-0"
	agent := startMember(t, newSandbox(t, m, etcd, map[string]string{"spec.nodeName": "node-a", "status.podIP": "127.0.0.1"}),
		&m.daemonSets[0].Spec.Template.Spec)
	relay := startMember(t, newSandbox(t, m, etcd, map[string]string{"metadata.name": relayName, "status.podIP": "127.0.0.1"}),
		&m.statefulSets[0].Spec.Template.Spec)

	agent.proc.waitLog(t, regexp.MustCompile(`msg="agent started"`), 30*time.Second)
	agent.checkProbes(t)
	relay.checkProbes(t)
	prefix := "/procfleet/" + m.configMaps[sharedConfig].Data[clusterKey] + "/members/"
	waitKey(t, e.Client(t), prefix+"agents/node-a")
	waitKey(t, e.Client(t), prefix+"relays/"+relayName)
	// The spool and the write-ahead log are where the volumes are.
	agent.checkWrote(t, "--spool-dir")
	relay.checkWrote(t, "--data-dir")
}

// member is a manifest's container running in its sandbox.
type member struct {
	box  *sandbox
	c    corev1.Container
	proc *process
}

func startMember(t *testing.T, box *sandbox, spec *corev1.PodSpec) member {
	t.Helper()
	c := spec.Containers[0]
	env, args := box.container(spec, c)
	return member{box: box, c: c, proc: startProcfleet(t, env, args...)}
}

// checkProbes waits until every probe of the container passes.
func (mb member) checkProbes(t *testing.T) {
	t.Helper()
	for _, p := range []*corev1.Probe{mb.c.StartupProbe, mb.c.LivenessProbe, mb.c.ReadinessProbe} {
		if p == nil {
			continue
		}
		port := p.HTTPGet.Port.IntVal
		if p.HTTPGet.Port.StrVal != "" {
			port = containerPort(t, mb.c, p.HTTPGet.Port.StrVal)
		}
		url := "http://" + mb.box.mapped(port) + p.HTTPGet.Path
		waitFor(t, 30*time.Second, mb.c.Name+" probe "+url, func() error {
			code, body, err := httpGet(url)
			if err == nil && code != 200 {
				err = fmt.Errorf("status %d: %s", code, body)
			}
			return err
		})
	}
}

// checkWrote: the directory of the flag, in its volume, is not empty.
func (mb member) checkWrote(t *testing.T, flag string) {
	t.Helper()
	dir := flagValue(mb.c.Args, flag)
	local := mb.box.localPath(dir)
	ents, err := os.ReadDir(local)
	if local == dir || err != nil || len(ents) == 0 {
		t.Errorf("%s %s=%s: nothing written in its volume (%s): %v", mb.c.Name, flag, dir, local, err)
	}
}

// waitKey waits until key exists in etcd.
func waitKey(t *testing.T, cli *clientv3.Client, key string) {
	t.Helper()
	waitFor(t, 30*time.Second, "etcd key "+key, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		get, err := cli.Get(ctx, key)
		if err == nil && len(get.Kvs) == 0 {
			err = errors.New("missing")
		}
		return err
	})
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
