package install

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
)

func TestInstallManagedSystemd(t *testing.T) {
	root := t.TempDir()
	sys := &fakeSystem{t: t, state: map[string]bool{}}
	var out bytes.Buffer
	in := &installer{root: root, manage: true, sys: sys, out: &out}
	spec := newSpec(clustered(Agent, ""))
	f := func(exe string, want ...string) {
		t.Helper()
		sys.ran = nil
		out.Reset()
		if err := in.install(context.Background(), spec, exe); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sys.ran, want) {
			t.Errorf("ran %q, want %q\n%s", sys.ran, want, out.String())
		}
	}
	v1 := writeExe(t, "binary v1\n")
	f(v1, "useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group procfleet",
		"systemctl daemon-reload", "systemctl enable --now procfleet-agent")
	wantOutput(t, out.String(), "ran            systemctl enable --now procfleet-agent\n")

	sys.state["getent passwd procfleet"] = true
	sys.state["systemctl is-enabled --quiet procfleet-agent"] = true
	sys.state["systemctl is-active --quiet procfleet-agent"] = true
	f(v1)
	wantOutput(t, out.String(), "procfleet-agent: nothing changed\n")

	// An upgrade restarts the service, and the relay that runs the same binary.
	if err := os.WriteFile(in.path(unitPath(Relay)), []byte(unitText(Relay)), 0o644); err != nil {
		t.Fatal(err)
	}
	sys.state["systemctl is-active --quiet procfleet-relay"] = true
	f(writeExe(t, "binary v2\n"), "systemctl restart procfleet-agent", "systemctl restart procfleet-relay")

	// A stopped service is started; a group made beforehand is used.
	sys.state["systemctl is-active --quiet procfleet-agent"] = false
	sys.state["getent passwd procfleet"] = false
	sys.state["getent group procfleet"] = true
	in.dryRun = true
	f(v1)
	wantOutput(t, out.String(), "would run      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --gid procfleet procfleet\n",
		"would update   "+in.path(installBin)+" (content differs)\n", "would run      systemctl enable --now procfleet-agent\n")

	in.dryRun = false
	sys.ran = nil
	if err := in.uninstall(context.Background(), Agent, false); err != nil {
		t.Fatal(err)
	}
	if want := []string{"systemctl disable --now procfleet-agent", "systemctl daemon-reload"}; !slices.Equal(sys.ran, want) {
		t.Errorf("uninstall ran %q, want %q", sys.ran, want)
	}
}
