package discovery

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeFile writes a file atomically (as tools that write file_sd files
// do: a new inode each time).
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

const fileJob = `
- job_name: files
  file_sd_configs:
    - files: [db/*.yaml, web.json]
      refresh_interval: 1h
  relabel_configs:
    - source_labels: [__meta_filepath]
      regex: '.*/([^/]+)'
      target_label: file
`

func TestFileSD(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "db", "a.yaml"), "- targets: [db-1:9187, db-2:9187]\n  labels: {env: prod}\n")
	writeFile(t, filepath.Join(dir, "db", "b.yaml"), "- targets: ['db-3:9187']\n")
	writeFile(t, filepath.Join(dir, "web.json"), `[{"targets": ["web-1:80"], "labels": {"tier": "front"}}]`)
	writeFile(t, filepath.Join(dir, "db", "ignored.json"), `[{"targets": ["no:1"]}]`)
	j := runJob(t, fileJob, Deps{FileSDDir: dir})
	ts := waitSet(t, j, "four targets", hasAddresses("db-1:9187", "db-2:9187", "db-3:9187", "web-1:80"))
	want := []string{
		`{__address__="db-1:9187", __metrics_path__="/metrics", __scheme__="http", __scrape_interval__="1m", __scrape_timeout__="10s", env="prod", file="a.yaml", job="files"}`,
		`{__address__="web-1:80", __metrics_path__="/metrics", __scheme__="http", __scrape_interval__="1m", __scrape_timeout__="10s", file="web.json", job="files", tier="front"}`,
	}
	if got := []string{ts.Labels[0].String(), ts.Labels[3].String()}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("labels =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ts.Version != 1 {
		t.Fatalf("first set has version %d", ts.Version)
	}

	// A changed file is read again at the next poll, long before the
	// refresh interval (1h); a new file matching the pattern too.
	writeFile(t, filepath.Join(dir, "db", "b.yaml"), "- targets: ['db-4:9187']\n")
	writeFile(t, filepath.Join(dir, "db", "c.yaml"), "- targets: ['db-5:9187']\n")
	waitSet(t, j, "the changed files", hasAddresses("db-1:9187", "db-2:9187", "db-4:9187", "db-5:9187", "web-1:80"))

	// A file that fails to parse keeps its last targets and reports where;
	// the other files keep working.
	writeFile(t, filepath.Join(dir, "db", "a.yaml"), "- targets: [db-1:9187\n")
	st := waitStatus(t, j, "a.yaml's error", func(st Status) bool { return srcAt(st, 0).LastError != "" })
	src := srcAt(st, 0)
	if !strings.Contains(src.LastError, filepath.Join(dir, "db", "a.yaml")+": yaml: line") || src.Targets != 5 || src.Name != "file_sd_configs[0]" {
		t.Fatalf("source status = %+v", src)
	}
	if errs := j.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "job files: file_sd_configs[0] (") {
		t.Fatalf("Errors = %v", errs)
	}
	writeFile(t, filepath.Join(dir, "web.json"), `[{"targets": ["web-2:80"]}]`)
	waitSet(t, j, "web.json's change with a.yaml's last targets", hasAddresses("db-1:9187", "db-2:9187", "db-4:9187", "db-5:9187", "web-2:80"))

	// Fixed: no error. A file removed: its targets are gone.
	writeFile(t, filepath.Join(dir, "db", "a.yaml"), "- targets: [db-1:9187]\n")
	if err := os.Remove(filepath.Join(dir, "db", "c.yaml")); err != nil {
		t.Fatal(err)
	}
	waitSet(t, j, "a.yaml fixed, c.yaml removed", hasAddresses("db-1:9187", "db-4:9187", "web-2:80"))
	waitStatus(t, j, "no error", func(st Status) bool { return srcAt(st, 0).LastError == "" })
}

// A symbolic link may lead to a file inside the file_sd directory, not out
// of it; a FIFO is refused without waiting for a writer.
func TestFileSDRefusesLinksOutAndFIFOs(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "file_sd")
	outside := filepath.Join(root, "secret.yaml")
	writeFile(t, outside, "- targets: ['secret:1']\n")
	writeFile(t, filepath.Join(dir, "real", "in.yaml"), "- targets: ['in:1']\n")
	for link, to := range map[string]string{"out.yaml": outside, "in.yaml": filepath.Join(dir, "real", "in.yaml"), "sub": root} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := runJob(t, `
- job_name: links
  file_sd_configs: [{files: ["*.yaml", "sub/secret.yaml"]}]
`, Deps{FileSDDir: dir})
	waitSet(t, j, "only the file inside", hasAddresses("in:1"))
	st := j.Status().Sources[0]
	for _, want := range []string{
		filepath.Join(dir, "out.yaml") + ": refused: a symbolic link leads out of the file_sd directory",
		filepath.Join(dir, "sub", "secret.yaml") + ": refused: a symbolic link leads out",
		filepath.Join(dir, "fifo.yaml") + ": not a regular file (p---------); refused",
	} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("error %q does not say %q", st.LastError, want)
		}
	}
	if strings.Contains(st.LastError, "secret:1") {
		t.Errorf("error %q quotes the outside file", st.LastError)
	}
}

// Without its directory, a file source reports it and keeps its targets.
func TestFileSDDirectoryGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "file_sd")
	writeFile(t, filepath.Join(dir, "a.json"), `[{"targets": ["a:1"]}]`)
	j := runJob(t, "- job_name: gone\n  file_sd_configs: [{files: [a.json]}]\n", Deps{FileSDDir: dir})
	waitSet(t, j, "a:1", hasAddresses("a:1"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, j, "the directory's error", func(st Status) bool { return srcAt(st, 0).LastError != "" })
	if !strings.Contains(srcAt(st, 0).LastError, "cannot read the file_sd directory") || st.Targets != 1 {
		t.Fatalf("status = %+v", st)
	}
}
