package deploycheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/procfleet/procfleet/config"
)

// The names the manifests share; the tests look objects up by them.
const (
	namespace     = "procfleet"
	sharedConfig  = "procfleet" // the ConfigMap
	etcdKey       = "etcd-endpoints"
	clusterKey    = "cluster-name"
	clusterDocKey = "cluster.yaml"
	etcdEnv       = "PROCFLEET_ETCD"
	clusterEnv    = "PROCFLEET_CLUSTER"
)

// manifests are the objects of deploy/kubernetes/*.yaml, decoded strictly.
type manifests struct {
	objects      []object
	namespaces   []*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	jobs         []*batchv1.Job
	daemonSets   []*appsv1.DaemonSet
	statefulSets []*appsv1.StatefulSet
	pdbs         []*policyv1.PodDisruptionBudget
}

// object is one decoded document and where it came from.
type object struct {
	where string // file and document number
	kind  string
	meta  metav1.Object
}

// workload is a pod template with what owns it, for the checks that every
// pod must pass.
type workload struct {
	name string // kind/name
	spec *corev1.PodSpec
	meta *metav1.ObjectMeta
}

func (m *manifests) workloads() []workload {
	var ws []workload
	for _, j := range m.jobs {
		ws = append(ws, workload{"Job/" + j.Name, &j.Spec.Template.Spec, &j.Spec.Template.ObjectMeta})
	}
	for _, d := range m.daemonSets {
		ws = append(ws, workload{"DaemonSet/" + d.Name, &d.Spec.Template.Spec, &d.Spec.Template.ObjectMeta})
	}
	for _, s := range m.statefulSets {
		ws = append(ws, workload{"StatefulSet/" + s.Name, &s.Spec.Template.Spec, &s.Spec.Template.ObjectMeta})
	}
	return ws
}

var (
	loadOnce   sync.Once
	loaded     *manifests
	loadErr    error
	kubeDirRel = filepath.Join("deploy", "kubernetes")
)

// loadManifests decodes every document of every file once per test binary.
func loadManifests(t testing.TB) *manifests {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = readManifests(filepath.Join(repoRoot(t), kubeDirRel)) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

func readManifests(dir string) (*manifests, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.yaml in %s", dir)
	}
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		docs, err := splitDocuments(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for i, doc := range docs {
			where := fmt.Sprintf("%s document %d", filepath.Base(f), i+1)
			obj, err := decodeDocument(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if err := m.add(where, obj); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// splitDocuments returns the non-empty YAML documents of data.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil { // only comments
			docs = append(docs, doc)
		}
	}
}

// decodeDocument decodes doc into the k8s.io/api type its apiVersion and
// kind name, rejecting unknown fields and duplicate keys.
func decodeDocument(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		obj = &corev1.Namespace{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "batch/v1 Job":
		obj = &batchv1.Job{}
	case "apps/v1 DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	default:
		return nil, fmt.Errorf("apiVersion %q kind %q: not a kind these tests know; add it to decodeDocument", tm.APIVersion, tm.Kind)
	}
	// As the API server decodes: field names match case-sensitively
	// (encoding/json, under yaml.UnmarshalStrict, would take hostPid for
	// hostPID), and unknown or duplicate fields are errors.
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err = errors.Join(append(strict, err)...); err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	return obj, nil
}

func (m *manifests) add(where string, obj any) error {
	var meta metav1.Object
	var kind string
	switch o := obj.(type) {
	case *corev1.Namespace:
		m.namespaces, meta, kind = append(m.namespaces, o), o, "Namespace"
	case *corev1.ConfigMap:
		m.configMaps[o.Name], meta, kind = o, o, "ConfigMap"
	case *corev1.Service:
		m.services[o.Name], meta, kind = o, o, "Service"
	case *batchv1.Job:
		m.jobs, meta, kind = append(m.jobs, o), o, "Job"
	case *appsv1.DaemonSet:
		m.daemonSets, meta, kind = append(m.daemonSets, o), o, "DaemonSet"
	case *appsv1.StatefulSet:
		m.statefulSets, meta, kind = append(m.statefulSets, o), o, "StatefulSet"
	case *policyv1.PodDisruptionBudget:
		m.pdbs, meta, kind = append(m.pdbs, o), o, "PodDisruptionBudget"
	}
	for _, prev := range m.objects {
		if prev.kind == kind && prev.meta.GetName() == meta.GetName() {
			return fmt.Errorf("%s: %s %q again (first in %s)", where, kind, meta.GetName(), prev.where)
		}
	}
	m.objects = append(m.objects, object{where: where, kind: kind, meta: meta})
	return nil
}

// TestDecodeIsStrict shows that the decoder the manifests pass would catch
// a misspelt or miscased field, a duplicate key and an unknown kind.
func TestDecodeIsStrict(t *testing.T) {
	bad := map[string]string{
		"wrong case":     "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      hostPid: true\n",
		"unknown field":  "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      hostProc: true\n",
		"duplicate key":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b, a: c}\n",
		"unknown kind":   "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n",
		"wrong version":  "apiVersion: apps/v1beta1\nkind: DaemonSet\nmetadata: {name: x}\n",
		"type mismatch":  "apiVersion: v1\nkind: Namespace\nmetadata: {name: [x]}\n",
		"nested unknown": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a, args: [x], readOnly: true}]}}}\n",
	}
	for name, doc := range bad {
		if _, err := decodeDocument([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error:\n%s", name, doc)
		}
	}
	good := "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
	if _, err := decodeDocument([]byte(good)); err != nil {
		t.Errorf("a valid Namespace: %v", err)
	}
}

func TestManifestsObjects(t *testing.T) {
	m := loadManifests(t)
	if len(m.namespaces) != 1 || m.namespaces[0].Name != namespace {
		t.Fatalf("want one Namespace %q, have %d", namespace, len(m.namespaces))
	}
	// The agents need hostPID, hostNetwork, hostPath and added capabilities.
	if got := m.namespaces[0].Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("Namespace %s: pod-security.kubernetes.io/enforce = %q, want privileged", namespace, got)
	}
	for _, o := range m.objects {
		if o.kind != "Namespace" && o.meta.GetNamespace() != namespace {
			t.Errorf("%s: %s %s in namespace %q, want %q", o.where, o.kind, o.meta.GetName(), o.meta.GetNamespace(), namespace)
		}
	}
	if len(m.jobs) != 1 || len(m.daemonSets) != 1 || len(m.statefulSets) != 1 {
		t.Fatalf("want 1 Job, 1 DaemonSet, 1 StatefulSet; have %d, %d, %d", len(m.jobs), len(m.daemonSets), len(m.statefulSets))
	}
	sel := func(what string, s *metav1.LabelSelector, podLabels map[string]string) {
		t.Helper()
		ls, err := metav1.LabelSelectorAsSelector(s)
		if err != nil || ls.Empty() || !ls.Matches(labels.Set(podLabels)) {
			t.Errorf("%s: selector %v does not match the pod labels %v (%v)", what, s, podLabels, err)
		}
	}
	for _, d := range m.daemonSets {
		sel("DaemonSet/"+d.Name, d.Spec.Selector, d.Spec.Template.Labels)
	}
	for _, s := range m.statefulSets {
		sel("StatefulSet/"+s.Name, s.Spec.Selector, s.Spec.Template.Labels)
	}
	for _, p := range m.pdbs {
		matched := false
		for _, s := range m.statefulSets {
			ls, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			matched = matched || (err == nil && ls.Matches(labels.Set(s.Spec.Template.Labels)))
		}
		if !matched {
			t.Errorf("PodDisruptionBudget/%s selects no StatefulSet's pods", p.Name)
		}
	}
}

// TestManifestsPods checks what every pod template must do.
func TestManifestsPods(t *testing.T) {
	m := loadManifests(t)
	var image string
	for _, w := range m.workloads() {
		spec := w.spec
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken must be false: no procfleet pod calls the Kubernetes API (no RBAC)", w.name)
		}
		if spec.ServiceAccountName != "" {
			t.Errorf("%s: serviceAccountName %q: none is needed", w.name, spec.ServiceAccountName)
		}
		if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
			t.Fatalf("%s: want exactly one container", w.name)
		}
		c := spec.Containers[0]
		if image == "" {
			image = c.Image
		}
		if c.Image != image || c.Image == "" {
			t.Errorf("%s: image %q, want the same image everywhere (%q)", w.name, c.Image, image)
		}
		if len(c.Command) != 0 {
			t.Errorf("%s: command %q replaces the image's ENTRYPOINT /procfleet; give only args", w.name, c.Command)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: want readOnlyRootFilesystem: true", w.name)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: want allowPrivilegeEscalation: false", w.name)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s: want capabilities.drop: [ALL]", w.name)
		}
		if sc != nil && sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", w.name)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: want cpu and memory requests and a memory limit", w.name)
		} else if c.Resources.Requests.Memory().Cmp(*c.Resources.Limits.Memory()) > 0 {
			t.Errorf("%s: memory request above the limit", w.name)
		}
		checkMounts(t, w)
		checkEnv(t, m, w.name, c)
		checkArgs(t, w.name, c)
	}
}

// checkMounts: every mount names a volume of the pod or, for a
// StatefulSet, one of its claim templates (checked by the relay test).
func checkMounts(t *testing.T, w workload) {
	t.Helper()
	for _, vm := range w.spec.Containers[0].VolumeMounts {
		if podVolume(w.spec, vm.Name) == nil && !strings.HasPrefix(w.name, "StatefulSet/") {
			t.Errorf("%s: volumeMount %q names no volume", w.name, vm.Name)
		}
	}
}

func podVolume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// checkEnv: every ConfigMap key an env var reads exists, and the etcd
// endpoints and cluster name come from the shared ConfigMap only.
func checkEnv(t *testing.T, m *manifests, what string, c corev1.Container) {
	t.Helper()
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.ConfigMapKeyRef
		cm, ok := m.configMaps[ref.Name]
		if !ok {
			t.Errorf("%s: env %s reads ConfigMap %q, which is not in the manifests", what, e.Name, ref.Name)
		} else if _, ok := cm.Data[ref.Key]; !ok {
			t.Errorf("%s: env %s reads key %q, which ConfigMap %q lacks", what, e.Name, ref.Key, ref.Name)
		}
	}
	cm := m.configMaps[sharedConfig]
	if cm == nil {
		t.Fatalf("no ConfigMap %q", sharedConfig)
	}
	// The etcd URLs themselves appear nowhere but in the ConfigMap.
	spec, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range strings.Split(cm.Data[etcdKey], ",") {
		if u = strings.TrimSpace(u); u != "" && bytes.Contains(spec, []byte(u)) {
			t.Errorf("%s: names the etcd endpoint %q itself; read it from ConfigMap %s key %s", what, u, sharedConfig, etcdKey)
		}
	}
}

func TestConfigMapClusterConfig(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps[sharedConfig]
	if cm == nil {
		t.Fatalf("no ConfigMap %q", sharedConfig)
	}
	for _, k := range []string{etcdKey, clusterKey, clusterDocKey} {
		if strings.TrimSpace(cm.Data[k]) == "" {
			t.Errorf("ConfigMap %s: key %s missing or empty", sharedConfig, k)
		}
	}
	c, err := config.ParseCluster([]byte(cm.Data[clusterDocKey]))
	if err != nil {
		t.Fatalf("ConfigMap %s key %s: %v", sharedConfig, clusterDocKey, err)
	}
	// The relay upstreams are the StatefulSet's pods, by their stable names.
	sts := m.statefulSets[0]
	port := containerPort(t, sts.Spec.Template.Spec.Containers[0], "http")
	var want, have []string
	for i := range *sts.Spec.Replicas {
		want = append(want, fmt.Sprintf("http://%s-%d.%s.%s.svc.cluster.local:%d/api/v1/import/prometheus",
			sts.Name, i, sts.Spec.ServiceName, sts.Namespace, port))
	}
	direct := 0
	for _, u := range c.Upstreams {
		if u.Relay {
			have = append(have, u.URL)
		} else {
			direct++
		}
	}
	if !slices.Equal(have, want) {
		t.Errorf("relay upstreams of cluster.yaml:\n %q\nwant one per StatefulSet replica:\n %q", have, want)
	}
	if direct == 0 {
		t.Error("cluster.yaml has no upstream that is not a relay")
	}
}

// containerPort returns the number of the container's port named name.
func containerPort(t testing.TB, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}
