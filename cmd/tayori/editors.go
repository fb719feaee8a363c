package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// newEditorsCmd manages the editors of the web console and their API tokens.
func newEditorsCmd(a *app) *cobra.Command {
	c := &cobra.Command{Use: "editors", Short: "Manage editor accounts of the web console and API tokens"}
	c.AddCommand(a.editorsAddCmd(), a.editorsPasswdCmd(), a.editorsListCmd(), a.editorsTokenCmd(), a.editorsRevokeCmd())
	return c
}

// readPassword reads a password: with a terminal on stdin it prompts twice
// without echo; otherwise it reads the first line of stdin, so that
// scripts can pipe it (never pass it as an argument: argv is visible to
// every user of the machine).
func (a *app) readPassword() (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(a.stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(io.LimitReader(a.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin (pipe it in, e.g. `tayori editors add NAME < pwfile`)")
	}
	return pw, nil
}

func (a *app) editorsAddCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add NAME",
		Short: "Create an editor; the password (12+ characters) is read from stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.webStore(cmd.Context())
			if err != nil {
				return err
			}
			pw, err := a.readPassword()
			if err != nil {
				return err
			}
			ed, err := store.AddEditor(cmd.Context(), args[0], pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "editor %s created; sign in at %s/admin/login\n", ed.Name, a.cfg.BaseURL)
			return nil
		},
	}
}

func (a *app) editorsPasswdCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set an editor's password (read from stdin) and end their sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.webStore(cmd.Context())
			if err != nil {
				return err
			}
			pw, err := a.readPassword()
			if err != nil {
				return err
			}
			if err := store.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "password of %s changed\n", args[0])
			return nil
		},
	}
}

func (a *app) editorsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the editors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := a.webStore(cmd.Context())
			if err != nil {
				return err
			}
			eds, err := store.Editors(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED")
			for _, e := range eds {
				fmt.Fprintf(tw, "%s\t%s\n", e.Name, a.when(e.CreatedAt))
			}
			return tw.Flush()
		},
	}
}

func (a *app) editorsTokenCmd() *cobra.Command {
	var label string
	c := &cobra.Command{
		Use:   "token NAME",
		Short: "Mint an API bearer token for an editor (shown once; only its hash is stored)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.webStore(cmd.Context())
			if err != nil {
				return err
			}
			tok, err := store.NewAPIToken(cmd.Context(), args[0], label)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, tok)
			return nil
		},
	}
	c.Flags().StringVar(&label, "label", "", "what the token is for (shown to operators)")
	return c
}

func (a *app) editorsRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke every API token of an editor",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.webStore(cmd.Context())
			if err != nil {
				return err
			}
			n, err := store.RevokeAPITokens(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%d token(s) of %s revoked\n", n, args[0])
			return nil
		},
	}
}
