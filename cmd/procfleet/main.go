// Command procfleet is the procfleet agent, its tools and its development
// setup. See README.md.
package main

import (
	"context"
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
		fmt.Fprintln(os.Stderr, "procfleet:", err)
		os.Exit(exitCode(err))
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "procfleet",
		Short:         "Granular Linux host statistics from a whole fleet into VictoriaMetrics",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newScanCmd(), newAgentCmd(), newRelayCmd(), newDevCmd(), newClusterCmd(), newConfigCmd(), newStatusCmd(), newTargetsCmd(), newUICmd(), newInstallCmd(), newUninstallCmd())
	markUsage(root) // last: it covers every command added above
	return root
}
