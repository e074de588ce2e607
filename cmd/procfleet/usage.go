package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/procfleet/procfleet/cluster/configstore"
)

// Exit codes, the same for every command:
//
//	0  success
//	1  runtime failure: etcd unreachable, an address taken, a rollout that
//	   did not complete, a write that lost a compare-and-swap
//	2  usage or invalid input: an unknown command or flag, a missing or
//	   extra argument, a required flag not given, a config file or document
//	   that cannot be read or is invalid
//
// Errors of the second kind are usageError; markUsage makes cobra's own
// errors (flags, arguments, unknown commands) usageError too.

// usageError marks errors in how the command was called or in its input
// (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitCode is the process's exit code for err, the error Execute returned.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if _, ok := errors.AsType[usageError](err); ok {
		return 2
	}
	return 1
}

// markUsage makes every error cobra finds in a command line, before any
// command runs, a usageError: flags that do not parse, arguments a command
// does not take, a required flag not given, an unknown command, and a
// parent command (procfleet config) called without a known subcommand,
// which cobra would answer with its help and exit 0. It adds cobra's
// default help and completion commands first, so that they are covered too.
func markUsage(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	walk(root, func(c *cobra.Command) {
		switch {
		case c.Name() == "help" && c.HasParent():
			c.Run = nil
			c.RunE = helpCommand
		case c.HasSubCommands() && !c.Runnable():
			c.Args = cobra.ArbitraryArgs
			c.RunE = missingCommand
		case c.Runnable():
			c.Args = usageArgs(c.Args)
		}
	})
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// usageArgs wraps a command's argument check so that its errors, and
// required flags that were not given, are usage errors. cobra checks the
// arguments before the required flags, so its own check of the latter
// then finds nothing to report.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if check != nil {
			if err := check(c, args); err != nil {
				if !strings.Contains(err.Error(), c.CommandPath()) {
					err = fmt.Errorf("%s: %w", c.CommandPath(), err)
				}
				return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
			}
		}
		var missing []string
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if req := f.Annotations[cobra.BashCompOneRequiredFlag]; len(req) > 0 && req[0] == "true" && !f.Changed {
				missing = append(missing, "--"+f.Name)
			}
		})
		if len(missing) > 0 {
			return usageError{fmt.Errorf("%s: %s is required (see %s --help)", c.CommandPath(), strings.Join(missing, ", "), c.CommandPath())}
		}
		return nil
	}
}

// missingCommand runs for a parent command called without a known
// subcommand: it prints the usage to stderr and fails with exit code 2.
func missingCommand(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageError{fmt.Errorf("%s (see %s --help)", msg, c.CommandPath())}
	}
	c.SetOut(c.ErrOrStderr())
	_ = c.Usage()
	return usageError{fmt.Errorf("%s needs a command", c.CommandPath())}
}

// helpCommand is cobra's help command, failing with exit code 2 on an
// unknown topic instead of printing the usage and exiting 0.
func helpCommand(c *cobra.Command, args []string) error {
	target, rest, err := c.Root().Find(args)
	if err != nil || target == nil || len(rest) > 0 && target.HasSubCommands() {
		return usageError{fmt.Errorf("unknown help topic %q (see %s --help)", strings.Join(args, " "), c.Root().Name())}
	}
	target.InitDefaultHelpFlag()
	target.InitDefaultVersionFlag()
	return target.Help()
}

// storeError classifies the errors of the config store: a revision that
// does not exist or a document the rules refuse is the caller's input
// (exit code 2); the rest (etcd, a lost compare-and-swap) are runtime
// failures.
func storeError(err error) error {
	if errors.Is(err, configstore.ErrInvalid) || errors.Is(err, configstore.ErrNoRevision) {
		return usageError{err}
	}
	return err
}
