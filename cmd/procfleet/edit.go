package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/procfleet/procfleet/cluster/configstore"
	"github.com/procfleet/procfleet/config"
)

// editMarker starts the lines edit adds to explain an error; they are
// removed from what the editor returns.
const editMarker = "# procfleet: "

// maxEdits bounds the edit, validate, re-open loop, so that an editor that
// never fixes the document cannot keep the command running.
const maxEdits = 10

func newConfigEditCmd() *cobra.Command {
	var ef etcdFlags
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "edit",
		Short: "Edit the cluster config in $EDITOR: validated, diffed, compare-and-swap",
		Long: `edit opens the cluster config in $EDITOR (default vi). When the edited
document is invalid, the editor opens again with the error at the top; an
empty document cancels. A valid change is shown as a diff and written as a
compare-and-swap on the revision that was read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, cli, err := ef.store()
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := withTimeout(cmd.Context(), etcdTimeout)
			cur, err := st.Get(ctx)
			cancel()
			if err != nil {
				return err
			}
			edited, err := editLoop(cmd, cur.Data)
			if err != nil || edited == nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "--- config revision %d\n+++ edited\n", cur.Revision)
			w.Write(lineDiff(cur.Data, edited))
			ctx, cancel = withTimeout(cmd.Context(), etcdTimeout)
			defer cancel()
			rev, err := st.Set(ctx, edited, cur.Revision, configstore.WithNote("config edit"))
			if errors.Is(err, configstore.ErrConflict) {
				return fmt.Errorf("%w: someone else changed it while you edited; your version is not written, run edit again", err)
			}
			if err != nil {
				return storeError(err)
			}
			fmt.Fprintf(w, "config revision %d written (was %d)\n", rev, cur.Revision)
			return followRollout(cmd, cli, ef, rev, wait)
		},
	}
	ef.register(cmd, localEtcd)
	addWaitFlag(cmd, &wait)
	return cmd
}

// editLoop runs the editor until the document is valid, unchanged (nil) or
// emptied (nil, cancelled).
func editLoop(cmd *cobra.Command, orig []byte) ([]byte, error) {
	dir, err := os.MkdirTemp("", "procfleet-edit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "cluster.yaml")
	content, problem := orig, ""
	for range maxEdits {
		var buf bytes.Buffer
		if problem != "" {
			for _, l := range strings.Split(problem, "\n") {
				buf.WriteString(editMarker + l + "\n")
			}
			buf.WriteString(editMarker + "fix the document, or empty the file to cancel\n")
		}
		buf.Write(content)
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			return nil, err
		}
		if err := runEditor(cmd, path); err != nil {
			return nil, err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		content = stripMarkers(raw)
		switch {
		case len(bytes.TrimSpace(content)) == 0:
			fmt.Fprintln(cmd.OutOrStdout(), "edit cancelled: the document is empty; nothing written")
			return nil, nil
		case bytes.Equal(content, orig):
			fmt.Fprintln(cmd.OutOrStdout(), "no changes; nothing written")
			return nil, nil
		}
		if _, err := config.ParseCluster(content); err != nil {
			problem = err.Error()
			fmt.Fprintf(cmd.ErrOrStderr(), "procfleet: invalid config, opening the editor again: %v\n", err)
			continue
		}
		return content, nil
	}
	return nil, fmt.Errorf("still invalid after %d edits (%s); nothing written", maxEdits, problem)
}

func stripMarkers(b []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if !bytes.HasPrefix(l, []byte(editMarker)) {
			out.Write(l)
		}
	}
	return out.Bytes()
}

// runEditor runs $EDITOR (which may carry arguments) on path, attached to
// the command's terminal.
func runEditor(cmd *cobra.Command, path string) error {
	editor := os.Getenv("EDITOR")
	if editor == "" {
		editor = "vi"
	}
	c := exec.Command("sh", "-c", editor+` "$1"`, "procfleet-edit", path)
	c.Stdin, c.Stdout, c.Stderr = stdinOf(cmd), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if err := c.Run(); err != nil {
		return fmt.Errorf("editor %q: %w", editor, err)
	}
	return nil
}

func stdinOf(cmd *cobra.Command) io.Reader {
	if cmd.InOrStdin() != nil {
		return cmd.InOrStdin()
	}
	return os.Stdin
}
