// Command tayori composes, renders and delivers newsletters.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errSilent) { // the command already reported why
			fmt.Fprintln(os.Stderr, "tayori:", err)
		}
		os.Exit(exitCode(err))
	}
}
