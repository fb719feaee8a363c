package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// errSilent is returned by commands that already reported their failure
// (for example `compose check` printing problems) and only need a non-zero
// exit status.
var errSilent = errors.New("failed")

// exitCode maps an error from run to the process exit status: 2 for a
// command line that cobra could not parse (usageError: an unknown command
// or flag, a flag's bad value, the wrong number of arguments), 75 for a
// failure worth retrying (tempFailError), 1 for everything else.
func exitCode(err error) int {
	if errors.As(err, new(*tempFailError)) {
		return 75 // EX_TEMPFAIL
	}
	if errors.As(err, new(*usageError)) {
		return 2
	}
	return 1
}

// usageError marks a command line cobra could not parse; its text is
// cobra's ("unknown command …", "unknown flag: --x", "accepts 1 arg(s) …").
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// markUsageErrors makes cobra's command-line errors usageErrors: those of
// flags (FlagErrorFunc, which subcommands inherit) and of each command's
// argument check. (An unknown command at the top is found by execute.)
func markUsageErrors(c *cobra.Command) {
	if !c.HasParent() {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return &usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
}

// tempFailError marks a failure worth trying again later: the command
// exits 75 (EX_TEMPFAIL, sysexits.h), which an MTA piping mail into it
// takes as "keep the message and retry".
type tempFailError struct{ err error }

func (e *tempFailError) Error() string { return e.err.Error() }
func (e *tempFailError) Unwrap() error { return e.err }

// run is the whole program: main only calls it, and tests drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return newApp(getenv, stdin, stdout, stderr).execute(ctx, args)
}

// newApp returns the program's app on the given environment and streams.
func newApp(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
}

// execute runs the command args names, then closes what it opened.
// Tests call it on an app of their own to see what the command made.
func (a *app) execute(ctx context.Context, args []string) error {
	defer a.close()
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	markUsageErrors(root)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && cmd == root && !errors.As(err, new(*usageError)) {
		// The top command runs nothing: its only errors are cobra's
		// "unknown command" (and its flags', marked already).
		err = &usageError{err}
	}
	return err
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "tayori",
		Short:         "Tayori composes, renders and delivers newsletters",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	addGlobalFlags(root)
	root.AddCommand(
		newVersionCmd(a),
		newConfigCmd(a),
		newInitCmd(a),
		newComposeCmd(a),
		newSubscribersCmd(a),
		newSendCmd(a),
		newSendsCmd(a),
		newWorkerCmd(a),
		newServeCmd(a),
		newEditorsCmd(a),
		newRunCmd(a),
		newPreflightCmd(a),
		newFeedbackCmd(a),
	)
	return root
}
