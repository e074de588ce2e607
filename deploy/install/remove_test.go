package install

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestUninstallRoot(t *testing.T) {
	root := t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	mustInstall(t, env, clustered(Agent, root))
	spool := filepath.Join(root, "var/lib/procfleet/spool")
	if err := os.MkdirAll(spool, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spool, "00000001.seg"), []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	// What "systemctl enable" made on the target.
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/procfleet-agent.service")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/systemd/system/procfleet-agent.service", link); err != nil {
		t.Fatal(err)
	}

	out := mustUninstall(t, env, UninstallConfig{Kind: Agent, Root: root, DryRun: true})
	wantOutput(t, out, "would remove   "+filepath.Join(root, "usr/local/bin/procfleet")+"\n", "would remove   "+link+"\n",
		"would remove   "+filepath.Join(root, "etc/procfleet")+"\n")
	if _, err := os.Stat(filepath.Join(root, "etc/procfleet/agent.env")); err != nil {
		t.Fatalf("dry run removed agent.env: %v", err)
	}

	out = mustUninstall(t, env, UninstallConfig{Kind: Agent, Root: root})
	want := mergeModes(baseDirs, map[string]fs.FileMode{
		"etc/systemd/system/multi-user.target.wants": fs.ModeDir | 0o755,
		"var/lib/procfleet":                          fs.ModeDir | 0o750,
		"var/lib/procfleet/spool":                    fs.ModeDir | 0o750,
		"var/lib/procfleet/spool/00000001.seg":       0o640,
	})
	if got := tree(t, root); !mapsEqual(got, want) {
		t.Fatalf("after uninstall:\n%v\nwant:\n%v", got, want)
	}
	wantOutput(t, out, "removed        "+filepath.Join(root, "etc/procfleet/agent.yaml")+"\n",
		"kept           "+filepath.Join(root, "var/lib/procfleet")+" (data; uninstall --purge removes "+spool+")\n",
		"procfleet-agent: uninstalled\n")

	out = mustUninstall(t, env, UninstallConfig{Kind: Agent, Root: root, Purge: true})
	delete(want, "var/lib/procfleet")
	delete(want, "var/lib/procfleet/spool")
	delete(want, "var/lib/procfleet/spool/00000001.seg")
	if got := tree(t, root); !mapsEqual(got, want) {
		t.Fatalf("after uninstall --purge:\n%v\nwant:\n%v", got, want)
	}
	wantOutput(t, out, "removed        "+spool+"\n", "removed        "+filepath.Join(root, "var/lib/procfleet")+"\n")

	out = mustUninstall(t, env, UninstallConfig{Kind: Agent, Root: root, Purge: true})
	wantOutput(t, out, "procfleet-agent: nothing to remove\n")
}

func TestUninstallKeepsWhatTheOtherUses(t *testing.T) {
	root := t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	mustInstall(t, env, clustered(Agent, root))
	mustInstall(t, env, clustered(Relay, root))
	for _, d := range []string{"spool", "relay"} {
		if err := os.MkdirAll(filepath.Join(root, "var/lib/procfleet", d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	out := mustUninstall(t, env, UninstallConfig{Kind: Agent, Root: root, Purge: true})
	wantOutput(t, out, "kept           "+filepath.Join(root, "usr/local/bin/procfleet")+" ("+
		filepath.Join(root, "etc/systemd/system/procfleet-relay.service")+" still uses it)\n",
		"kept           "+filepath.Join(root, "var/lib/procfleet")+" (not empty)\n")
	got := tree(t, root)
	for _, p := range []string{"usr/local/bin/procfleet", "etc/procfleet/relay.yaml", "etc/procfleet/relay.env",
		"etc/systemd/system/procfleet-relay.service", "var/lib/procfleet/relay"} {
		if _, ok := got[p]; !ok {
			t.Errorf("uninstall agent removed %s", p)
		}
	}
	for _, p := range []string{"etc/procfleet/agent.yaml", "etc/procfleet/agent.env", "etc/systemd/system/procfleet-agent.service", "var/lib/procfleet/spool"} {
		if _, ok := got[p]; ok {
			t.Errorf("uninstall agent kept %s", p)
		}
	}
	mustUninstall(t, env, UninstallConfig{Kind: Relay, Root: root, Purge: true})
	if got := tree(t, root); !mapsEqual(got, baseDirs) {
		t.Fatalf("after uninstalling both:\n%v\nwant:\n%v", got, baseDirs)
	}
}
