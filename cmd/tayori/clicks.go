package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/internal/store"
)

// clickCounter wires the aggregate click counter (package clicks): the
// store's click_links, the lists' setting and a signer whose keys derive
// from TAYORI_SECRET, made once per process (the worker's and the web
// server's are the same). Counting stays off for every list until it is
// set.
func (a *app) clickCounter(ctx context.Context) (*clicks.Counter, error) {
	if a.clicks != nil {
		return a.clicks, nil
	}
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := a.subscriberStore(ctx)
	if err != nil {
		return nil, err
	}
	signer, err := clicks.NewSigner(subs.Keyring())
	if err != nil {
		return nil, err
	}
	c, err := clicks.New(store.Clicks(db), subs, signer, clicks.Config{BaseURL: a.cfg.BaseURL})
	if err != nil {
		return nil, err
	}
	a.made("clicks")
	a.clicks = c
	return c, nil
}

// listsClicksCmd is `tayori subscribers lists clicks KEY on|off`.
func (a *app) listsClicksCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "clicks KEY on|off",
		Short: "Count clicks on item links in aggregate (off by default), or stop",
		Long: `Choose whether the sends of list KEY count clicks on the links of their
items: "on" makes item links go through BASE_URL/c/<token>, which records
only the number of clicks per link of each send, never who clicked (no
reader id, address, IP address or cookie; no open pixel). "off" (the
default) leaves links as written. A change applies to sends created
afterwards; the console's send page shows the counts.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var on bool
			switch args[1] {
			case "on":
				on = true
			case "off":
			default:
				return fmt.Errorf("clicks: want on or off, got %q", args[1])
			}
			subs, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			if err := subs.SetListCountsClicks(ctx, args[0], on); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "list %s: count clicks on item links: %s\n", args[0], args[1])
			return nil
		},
	}
}
