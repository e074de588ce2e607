// Command procfleet is the procfleet agent, its tools and its development
// setup. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "procfleet:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "procfleet:", err)
		os.Exit(1)
	}
}

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "procfleet",
		Short:         "Granular Linux host statistics from a whole fleet into VictoriaMetrics",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newScanCmd(), newAgentCmd(), newRelayCmd(), newDevCmd(), newClusterCmd(), newConfigCmd(), newStatusCmd(), newUICmd(), newInstallCmd(), newUninstallCmd())
	return root
}
