package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/internal/config"
	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// version and commit are set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		// version needs no configuration: it must work on a broken one.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := commit
			if c == "" {
				if bi, ok := debug.ReadBuildInfo(); ok {
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" {
							c = s.Value
						}
					}
				}
			}
			if c == "" {
				c = "unknown"
			}
			fmt.Fprintf(a.stdout, "tayori %s (commit %s, %s %s/%s)\n", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(a.stdout, "SQLite engine: %s\n", sqlitedb.Engine)
			return nil
		},
	}
}

func newConfigCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration, secrets redacted",
		Long:  configLong(),
		Args:  cobra.NoArgs,
		// config only reads: it never generates the secret nor creates the data directory.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.loadConfig(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, kv := range a.cfg.Redacted() {
				fmt.Fprintf(a.stdout, "%-24s %s\n", kv[0], kv[1])
			}
			for _, w := range a.cfg.Warnings() {
				fmt.Fprintln(a.stdout, "warning:", w)
			}
			return nil
		},
	}
}

// configLong is config's help: what it does, then every variable of
// config.Vars with its default and meaning.
func configLong() string {
	var b strings.Builder
	b.WriteString("Print the effective configuration (defaults, then the config file, then TAYORI_*\n" +
		"variables) with passwords and secrets redacted, and warn about settings unfit for\n" +
		"production. It changes nothing on disk.\n\nVariables:\n")
	for _, v := range config.Vars {
		fmt.Fprintf(&b, "  %s", v.Env)
		if d := v.DefaultText(); d != "" {
			fmt.Fprintf(&b, " (default %s)", d)
		}
		fmt.Fprintf(&b, "\n      %s\n", strings.ReplaceAll(v.Doc, "`", ""))
	}
	return b.String()
}
