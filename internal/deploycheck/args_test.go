package deploycheck

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// varRef is a Kubernetes $(VAR) reference to an env var in args.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// containerArgs is a container's args: the procfleet command and its flags,
// all written --name=value (or --name for a boolean).
type containerArgs struct {
	command []string
	flags   map[string]string
}

// parseContainerArgs splits args into the command and the flags.
func parseContainerArgs(args []string) (containerArgs, error) {
	ca := containerArgs{flags: map[string]string{}}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			if len(ca.flags) > 0 {
				return ca, fmt.Errorf("argument %q after the flags: procfleet's commands take none", a)
			}
			ca.command = append(ca.command, a)
			continue
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || name == "" {
			return ca, fmt.Errorf("argument %q: write flags as --name=value", a)
		}
		if !ok {
			value = "true"
		}
		if _, dup := ca.flags[name]; dup {
			return ca, fmt.Errorf("flag --%s given twice", name)
		}
		ca.flags[name] = value
	}
	if len(ca.command) == 0 {
		return ca, errors.New("no procfleet command in args")
	}
	return ca, nil
}

// checkArgs: every flag exists in `procfleet <command> --help`, and every
// $(VAR) names an env var of the container (Kubernetes leaves an unknown
// reference as it is, silently).
func checkArgs(t *testing.T, what string, c corev1.Container) {
	t.Helper()
	ca, err := parseContainerArgs(c.Args)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	known := helpFlags(t, ca.command)
	for name := range ca.flags {
		if !known[name] {
			t.Errorf("%s: procfleet %s has no flag --%s (see procfleet %s --help)", what, strings.Join(ca.command, " "), name, strings.Join(ca.command, " "))
		}
	}
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	for _, a := range c.Args {
		for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
			if !env[ref[1]] {
				t.Errorf("%s: argument %q refers to $(%s), which is not an env var of the container", what, a, ref[1])
			}
		}
	}
	if _, ok := ca.flags["etcd"]; ok {
		checkFromConfigMap(t, what, c, ca.flags["etcd"], etcdEnv, etcdKey)
		checkFromConfigMap(t, what, c, ca.flags["cluster"], clusterEnv, clusterKey)
	}
}

// checkFromConfigMap: the flag's value is $(envName) and envName reads key
// of the shared ConfigMap.
func checkFromConfigMap(t *testing.T, what string, c corev1.Container, value, envName, key string) {
	t.Helper()
	if value != "$("+envName+")" {
		t.Errorf("%s: flag value %q, want $(%s)", what, value, envName)
	}
	e := envVar(c, envName)
	if e == nil || e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil ||
		e.ValueFrom.ConfigMapKeyRef.Name != sharedConfig || e.ValueFrom.ConfigMapKeyRef.Key != key {
		t.Errorf("%s: env %s must come from ConfigMap %s key %s", what, envName, sharedConfig, key)
	}
}

// envVar returns the container's env var name, or nil.
func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

var (
	helpMu    sync.Mutex
	helpCache = map[string]map[string]bool{}
	helpFlag  = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?--([a-z0-9][a-z0-9-]*)`)
)

// helpFlags returns the flags `procfleet <command...> --help` lists.
func helpFlags(t testing.TB, command []string) map[string]bool {
	t.Helper()
	key := strings.Join(command, " ")
	helpMu.Lock()
	defer helpMu.Unlock()
	if f, ok := helpCache[key]; ok {
		return f
	}
	out, stderr, code := runProcfleet(t, append(slices.Clone(command), "--help")...)
	if code != 0 || !strings.Contains(out, "Usage:\n  procfleet "+key) {
		t.Fatalf("procfleet %s --help: exit %d, not that command's help:\n%s%s", key, code, out, stderr)
	}
	// Only the flag tables: the description above may mention flags that
	// belong to other commands.
	_, table, _ := strings.Cut(out, "\nFlags:\n")
	f := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(table, -1) {
		f[m[1]] = true
	}
	if !f["help"] || len(f) < 2 {
		t.Fatalf("procfleet %s --help: found flags %v in:\n%s", key, f, out)
	}
	helpCache[key] = f
	return f
}
