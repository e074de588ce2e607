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
	ctx, stop := notifyContext(os.Interrupt, syscall.SIGTERM)
	err := execute(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "procfleet:", err)
		os.Exit(exitCode(err))
	}
}

// notifyContext is signal.NotifyContext: its context is done at the first
// of sigs, and stop unregisters them. signal.NotifyContext's goroutine
// waits in a function of os/signal, whose function tables lie apart from
// everything else the agent's goroutines wait in; every garbage collection
// looks up each frame of each goroutine there, mapping 64 KiB of the binary
// around each (docs/performance.md). This one waits in waitSignal, beside
// main's own frames.
func notifyContext(sigs ...os.Signal) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go waitSignal(ctx, ch, cancel)
	return ctx, func() {
		signal.Stop(ch)
		cancel()
	}
}

// waitSignal calls cancel when a signal arrives on ch, and returns then or
// when ctx is done.
func waitSignal(ctx context.Context, ch <-chan os.Signal, cancel context.CancelFunc) {
	select {
	case <-ch:
		cancel()
	case <-ctx.Done():
	}
}

// execute runs the command args name. A command that runs until ctx is
// done (agent) parses and checks everything inside cobra, then leaves its
// run to execute, which starts it once cobra has returned: the command
// tree (every command's flags and texts, about 100 KB of heap) is then
// garbage, and cobra's frames are not on the main goroutine's stack, whose
// every frame each garbage collection looks up in the binary's function
// tables, mapping their pages (docs/performance.md).
func execute(ctx context.Context, args []string) error {
	var later deferredRun
	root := newRootDeferring(&later)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return err
	}
	if later.run == nil {
		return nil
	}
	return later.run()
}

// deferredRun is the run a command leaves to execute; nil run: none.
type deferredRun struct{ run func() error }

// deferOrRun hands run to later, or runs it when there is no later (a
// command tree made by newRoot, as the tests make it).
func deferOrRun(later *deferredRun, run func() error) error {
	if later == nil {
		return run()
	}
	later.run = run
	return nil
}

// newRoot returns the command tree; long runs run inside Execute.
func newRoot() *cobra.Command { return newRootDeferring(nil) }

// newRootDeferring returns the command tree whose long runs go to later
// (see execute) when later is not nil.
func newRootDeferring(later *deferredRun) *cobra.Command {
	root := &cobra.Command{
		Use:           "procfleet",
		Short:         "Granular Linux host statistics from a whole fleet into VictoriaMetrics",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newScanCmd(), newAgentCmd(later), newRelayCmd(), newDevCmd(), newClusterCmd(), newConfigCmd(), newStatusCmd(), newTargetsCmd(), newUICmd(), newInstallCmd(), newUninstallCmd())
	markUsage(root) // last: it covers every command added above
	return root
}
