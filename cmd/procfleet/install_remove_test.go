package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestUninstallRoot(t *testing.T) {
	root := t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	c := []string{"--etcd", "http://10.0.0.1:2379", "--cluster", "prod"}
	mustInstall(t, env, append([]string{"install", "agent", "--root", root}, c...)...)
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

	out := mustInstall(t, env, "uninstall", "agent", "--root", root, "--dry-run")
	wantOutput(t, out, "would remove   "+filepath.Join(root, "usr/local/bin/procfleet")+"\n", "would remove   "+link+"\n",
		"would remove   "+filepath.Join(root, "etc/procfleet")+"\n")
	if _, err := os.Stat(filepath.Join(root, "etc/procfleet/agent.env")); err != nil {
		t.Fatalf("dry run removed agent.env: %v", err)
	}

	out = mustInstall(t, env, "uninstall", "agent", "--root", root)
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

	out = mustInstall(t, env, "uninstall", "agent", "--root", root, "--purge")
	delete(want, "var/lib/procfleet")
	delete(want, "var/lib/procfleet/spool")
	delete(want, "var/lib/procfleet/spool/00000001.seg")
	if got := tree(t, root); !mapsEqual(got, want) {
		t.Fatalf("after uninstall --purge:\n%v\nwant:\n%v", got, want)
	}
	wantOutput(t, out, "removed        "+spool+"\n", "removed        "+filepath.Join(root, "var/lib/procfleet")+"\n")

	out = mustInstall(t, env, "uninstall", "agent", "--root", root, "--purge")
	wantOutput(t, out, "procfleet-agent: nothing to remove\n")
}

func TestUninstallKeepsWhatTheOtherUses(t *testing.T) {
	root := t.TempDir()
	env := testEnv(t, writeExe(t, "binary\n"))
	c := []string{"--root", root, "--etcd", "http://10.0.0.1:2379", "--cluster", "prod"}
	mustInstall(t, env, append([]string{"install", "agent"}, c...)...)
	mustInstall(t, env, append([]string{"install", "relay"}, c...)...)
	for _, d := range []string{"spool", "relay"} {
		if err := os.MkdirAll(filepath.Join(root, "var/lib/procfleet", d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	out := mustInstall(t, env, "uninstall", "agent", "--root", root, "--purge")
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
	mustInstall(t, env, "uninstall", "relay", "--root", root, "--purge")
	if got := tree(t, root); !mapsEqual(got, baseDirs) {
		t.Fatalf("after uninstalling both:\n%v\nwant:\n%v", got, baseDirs)
	}
}
